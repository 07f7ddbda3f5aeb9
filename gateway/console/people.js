// Complaints (§7), training (§4) and performance (§5): each page shows what
// the caller's roles reach and offers the steps their roles may take.
import { t, label, labelled, fmtTime, fmtMoney, metricName } from './i18n.js';
import { api, h, form, table, section, badge, slaCell, notify, showError, qs, link, enumOptions, person } from './ui.js';
import { companyCell, customerIdOf } from './pages.js';

function kv(pairs) {
  return h('dl', { class: 'kv' }, ...pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

async function complaints(root, { id, me }) {
  if (id) return complaint(root, id);
  const r = await api('GET', `/api/v1/complaints${qs({ pageSize: 200 })}`);
  const list = table([
    { title: t('complaintNo'), get: (c) => link(`#/complaints/${c.id}`, c.number) },
    { title: t('company'), get: (c) => companyCell(c.customerId) },
    { title: t('state'), get: (c) => badge(c.state) },
    { title: t('severity'), get: (c) => badge(c.severity) },
    { title: t('category'), get: (c) => c.categoryLabel || c.category },
    { title: t('subject'), get: (c) => c.subject },
    { title: t('handler'), get: (c) => person(c, 'handler') },
    { title: t('time'), get: (c) => fmtTime(c.receiveTime) },
  ], r.complaints || []);
  const parts = [h('h1', {}, t('navComplaints')), section(t('navComplaints'), h('div', { class: 'scroll' }, list))];
  if (me.roles.some((x) => ['agent', 'supervisor', 'admin'].includes(x))) {
    const cats = await api('GET', '/api/v1/complaint-categories').catch(() => ({ categories: [] }));
    const requestId = crypto.randomUUID();
    parts.push(section(t('record'), form([
      { name: 'customerId', label: t('customer'), required: true, help: t('findCustomer') },
      { name: 'source', label: t('source'), type: 'select', options: enumOptions(labelled('COMPLAINT_SOURCE_')) },
      { name: 'channel', label: t('channel'), type: 'select', options: enumOptions(labelled('CHANNEL_')), value: 'CHANNEL_PHONE' },
      { name: 'subjectKind', label: t('kind'), type: 'select', options: enumOptions(labelled('SUBJECT_KIND_')) },
      { name: 'subject', label: t('subject'), required: true },
      { name: 'category', label: t('category'), type: 'select', options: (cats.categories || []).map((c) => [c.code, c.label]) },
      { name: 'severity', label: t('severity'), type: 'select', options: enumOptions(labelled('SEVERITY_')) },
      { name: 'description', label: t('description'), type: 'textarea', required: true },
    ], t('record'), async (v) => {
      const complaint = { ...v, customerId: await customerIdOf(v.customerId) };
      const c = await api('POST', '/api/v1/complaints', { complaint, requestId });
      notify(`${t('created')}: ${c.number}`);
      location.hash = `#/complaints/${c.id}`;
    })));
  }
  root.replaceChildren(...parts);
  return undefined;
}

async function complaint(root, id) {
  const [c, dl, hist] = await Promise.all([
    api('GET', `/api/v1/complaints/${id}`),
    api('GET', `/api/v1/complaints/${id}/deadlines`).catch(() => ({ deadlines: [] })),
    api('GET', `/api/v1/complaints/${id}/history`).catch(() => ({ entries: [] })),
  ]);
  const move = form([
    { name: 'action', label: t('transition'), type: 'select', options: enumOptions(labelled('COMPLAINT_ACTION_')) },
    { name: 'reason', label: t('reason') },
    { name: 'text', label: t('detail'), type: 'textarea' },
  ], t('apply'), async (v) => {
    await api('POST', `/api/v1/complaints/${id}/transitions`, { ...v, etag: c.etag });
    notify(t('saved'));
    complaint(root, id);
  });
  root.replaceChildren(h('h1', {}, `${c.number} · ${c.subject}`), h('div', { class: 'cols' },
    section(t('details'), kv([[t('company'), companyCell(c.customerId)], [t('state'), badge(c.state)], [t('source'), label(c.source)],
      [t('channel'), label(c.channel)], [t('severity'), badge(c.severity)], [t('category'), c.categoryLabel || c.category],
      [t('handler'), person(c, 'handler')], [t('time'), fmtTime(c.receiveTime)], [t('description'), c.description]])),
    section(t('deadlines'), table([
      { title: t('metric'), get: (d) => metricName(d.metric) }, { title: t('state'), get: (d) => badge(d.state) },
      { title: t('dueTime'), get: (d) => fmtTime(d.dueTime) },
    ], dl.deadlines || [])),
    section(t('transition'), move)),
  section(t('history'), table([
    { title: t('time'), get: (e) => fmtTime(e.time) }, { title: t('action'), get: (e) => label(e.action) },
    { title: t('state'), get: (e) => `${label(e.fromState)} → ${label(e.toState)}` }, { title: t('actor'), get: (e) => person(e, 'actor') },
    { title: t('reason'), get: (e) => e.reason },
  ], hist.entries || [])));
}

async function training(root, { me }) {
  const [sessions, mine, certs, courses, exams] = await Promise.all([
    api('GET', `/api/v1/training/sessions${qs({ pageSize: 100 })}`).catch(() => ({ sessions: [] })),
    api('GET', `/api/v1/training/enrolments${qs({ staffId: me.staffId })}`).catch(() => ({ enrolments: [] })),
    api('GET', `/api/v1/training/certificates${qs({ staffId: me.staffId })}`).catch(() => ({ certificates: [] })),
    api('GET', `/api/v1/training/courses${qs({ pageSize: 100 })}`).catch(() => ({ courses: [] })),
    api('GET', '/api/v1/training/exams').catch(() => ({ exams: [] })),
  ]);
  const titles = new Map((courses.courses || []).map((c) => [c.id, c.title]));
  const sessionTitle = new Map((sessions.sessions || []).map((x) => [x.id, `${x.courseTitle} · ${fmtTime(x.startTime)}`]));
  const examBox = h('div', { id: 'exam-attempt' });
  const reload = () => training(root, { me });
  root.replaceChildren(h('h1', {}, t('navTraining')),
    h('div', { class: 'cols' },
      section(t('myEnrolments'), table([
        { title: t('sessions'), get: (e) => sessionTitle.get(e.sessionId) || e.sessionId }, { title: t('state'), get: (e) => badge(e.state) },
        { title: t('time'), get: (e) => fmtTime(e.enrolTime) }, { title: t('hours'), get: (e) => e.hoursCredited || 0 },
      ], mine.enrolments || [])),
      section(t('certificates'), table([
        { title: t('name'), get: (c) => c.name }, { title: t('kind'), get: (c) => label(c.kind) },
        { title: t('end'), get: (c) => c.expiryDate || '—' }, { title: t('state'), get: (c) => (c.expired ? label('SLA_STATE_BREACHED') : t('yes')) },
      ], certs.certificates || []))),
    section(t('sessions'), h('div', { class: 'scroll' }, table([
      { title: t('title'), get: (s) => s.courseTitle }, { title: t('start'), get: (s) => fmtTime(s.startTime) },
      { title: t('end'), get: (s) => fmtTime(s.endTime) }, { title: t('trainer'), get: (s) => person(s, 'trainer') },
      { title: t('state'), get: (s) => badge(s.state) }, { title: t('members'), get: (s) => `${s.enrolled || 0} / ${s.capacity || 0}` },
      { title: t('actions'), get: (s) => h('button', { type: 'button', onclick: async () => {
        try { await api('POST', `/api/v1/training/sessions/${s.id}/enrolments`, { staffId: me.staffId }); notify(t('saved')); reload(); } catch (e) { showError(e); }
      } }, t('enrol')) },
    ], sessions.sessions || []))),
    section(t('exams'), table([
      { title: t('title'), get: (x) => x.title }, { title: t('courses'), get: (x) => titles.get(x.courseId) || '—' },
      { title: t('passMark'), get: (x) => x.passMark }, { title: t('timeLimit'), get: (x) => (x.timeLimitMinutes ? `${x.timeLimitMinutes} ${t('minutesUnit')}` : '—') },
      { title: t('actions'), get: (x) => h('button', { type: 'button', onclick: () => takeExam(examBox, x).catch(showError) }, t('startExam')) },
    ], exams.exams || []), examBox),
    section(t('courses'), table([
      { title: t('title'), get: (c) => c.title }, { title: t('kind'), get: (c) => label(c.topic) },
      { title: t('hours'), get: (c) => c.hours }, { title: t('detail'), get: (c) => c.description || '' },
    ], courses.courses || [])));
}

/** An exam attempt: its questions as a form, submitted once; the result. */
async function takeExam(box, exam) {
  const a = await api('POST', `/api/v1/training/exams/${encodeURIComponent(exam.id)}/attempts`, {});
  const fields = (a.items || []).map((q, i) => {
    const choice = q.kind === 'QUESTION_KIND_SINGLE_CHOICE' || q.kind === 'QUESTION_KIND_TRUE_FALSE';
    const multi = q.kind === 'QUESTION_KIND_MULTIPLE_CHOICE';
    const name = `q${i}`;
    if (choice || multi) {
      return h('fieldset', { class: 'question', dataset: { q: q.questionId, multi: multi ? '1' : '' } },
        h('legend', {}, `${i + 1}. ${q.stem}（${q.points}）`),
        (q.options || []).map((o, j) => {
          const id = `${name}-${j}`;
          return h('div', { class: 'field check' }, h('input', { type: multi ? 'checkbox' : 'radio', name, id, value: j }), h('label', { for: id }, o));
        }));
    }
    const id = `${name}-text`;
    return h('fieldset', { class: 'question', dataset: { q: q.questionId, text: '1' } },
      h('legend', {}, `${i + 1}. ${q.stem}（${q.points}）`), h('label', { for: id }, t('answer')), h('textarea', { id, rows: 3 }));
  });
  const submit = h('button', { type: 'button', class: 'primary' }, t('submit'));
  submit.addEventListener('click', async () => {
    const answers = [...box.querySelectorAll('fieldset.question')].map((fs) => (fs.dataset.text
      ? { questionId: fs.dataset.q, text: fs.querySelector('textarea').value }
      : { questionId: fs.dataset.q, chosen: [...fs.querySelectorAll('input:checked')].map((c) => Number(c.value)) }));
    try {
      const done = await api('POST', `/api/v1/training/attempts/${encodeURIComponent(a.id)}/submit`, { answers });
      box.replaceChildren(h('p', { class: 'banner', role: 'status' },
        `${exam.title}：${t('score')} ${Number(done.score || 0).toFixed(1)} · ${done.passed ? t('passed') : t('notPassed')}${done.state ? ` · ${label(done.state)}` : ''}`));
    } catch (e) { showError(e); }
  });
  box.replaceChildren(h('h3', {}, `${exam.title} · ${t('deadline')} ${fmtTime(a.deadline)}`), ...fields, h('div', { class: 'actions' }, submit));
}

async function performance(root, { id, me }) {
  const hr = me.roles.some((r) => ['hr', 'admin'].includes(r));
  const cycles = (await api('GET', '/api/v1/performance/cycles')).cycles || [];
  const cycle = cycles.find((c) => c.id === id) || cycles[0];
  const parts = [h('h1', {}, t('navPerformance')), section(t('cycles'), table([
    { title: t('period'), get: (c) => link(`#/performance/${c.id}`, c.period) }, { title: t('team'), get: (c) => c.team },
    { title: t('state'), get: (c) => badge(c.state) }, { title: t('evaluations'), get: (c) => c.evaluations },
    { title: t('dueTime'), get: (c) => fmtTime(c.calibrationDueTime) },
  ], cycles))];
  if (cycle) {
    const evs = (await api('GET', `/api/v1/performance/cycles/${cycle.id}/evaluations`)).evaluations || [];
    const reload = () => performance(root, { id: cycle.id, me });
    const step = (path, body) => async () => {
      try { await api('POST', path, body); notify(t('saved')); reload(); } catch (e) { showError(e); }
    };
    const own = evs.find((e) => e.staffId === me.staffId);
    if (own) {
      parts.push(section(`${t('myEvaluation')} · ${own.period}`, kv([[t('state'), badge(own.state)], [t('total'), own.totalScore?.toFixed ? own.totalScore.toFixed(2) : own.totalScore],
        [t('grade'), own.grade || own.computedGrade || '—'], [t('bonus'), fmtMoney(own.bonusFen)], [t('dueTime'), fmtTime(own.dueTime)],
        [t('comment'), own.reviewComment || '—']]),
      table([{ title: t('metric'), get: (i) => i.name || i.code }, { title: t('score'), get: (i) => (i.score ?? 0).toFixed ? i.score.toFixed(1) : i.score }], own.indicators || []),
      form([{ name: 'comment', label: t('selfAssessment'), type: 'textarea' }], t('submit'), async (v) => {
        await api('POST', `/api/v1/performance/evaluations/${own.id}/self-assessment`, { comment: v.comment }); notify(t('saved')); reload();
      }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: step(`/api/v1/performance/evaluations/${own.id}/acknowledge`, {}) }, t('acknowledge'))),
      form([{ name: 'reason', label: t('appeal'), required: true }], t('appeal'), async (v) => {
        await api('POST', `/api/v1/performance/evaluations/${own.id}/appeal`, v); notify(t('saved')); reload();
      }, { inline: true })));
    }
    const rows = evs.filter((e) => e !== own || hr);
    const hrTools = hr ? h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: step(`/api/v1/performance/cycles/${cycle.id}/close`, {}) }, t('closeCycle')),
      h('button', { type: 'button', onclick: step(`/api/v1/performance/cycles/${cycle.id}/close-calibration`, {}) }, t('closeCalibration')),
      h('button', { type: 'button', onclick: step(`/api/v1/performance/cycles/${cycle.id}/finalize`, {}) }, t('finalize')),
      h('button', { type: 'button', onclick: async () => {
        try {
          const x = await api('GET', `/api/v1/performance/cycles/${cycle.id}/export`);
          const bytes = Uint8Array.from(atob(x.content), (ch) => ch.charCodeAt(0));
          const a = h('a', { href: URL.createObjectURL(new Blob([bytes], { type: x.contentType })), download: x.filename });
          document.body.append(a); a.click(); a.remove();
        } catch (e) { showError(e); }
      } }, t('exportXlsx'))) : null;
    if (rows.length || hr) {
      parts.push(section(`${t('evaluations')} · ${cycle.period} · ${cycle.team}`, hrTools, h('div', { class: 'scroll' }, table([
        { title: t('displayName'), get: (e) => `${e.displayName || ''}（${e.staffId}）` }, { title: t('state'), get: (e) => badge(e.state) },
        { title: t('total'), get: (e) => (e.totalScore ?? 0).toFixed(2) }, { title: t('grade'), get: (e) => e.grade || e.computedGrade || '—' },
        { title: t('bonus'), get: (e) => (hr || e.bonusFen ? fmtMoney(e.bonusFen) : '—') },
        { title: t('dueTime'), get: (e) => h('span', { class: e.overdue ? 'sla SLA_STATE_BREACHED' : '' }, fmtTime(e.dueTime)) },
        { title: t('review'), get: (e) => ((e.reviewers || []).includes(me.staffId) && e.staffId !== me.staffId ? form([
          ...(e.indicators || []).filter((i) => String(i.source || '').startsWith('SOURCE_MANUAL')).map((i) => (
            { name: `s:${i.code}`, label: `${i.name || i.code}（0–100）`, type: 'number', min: 0, max: 100, required: true })),
          { name: 'comment', label: t('comment') },
        ], t('review'), async (v) => {
          const scores = Object.entries(v).filter(([k]) => k.startsWith('s:')).map(([k, x]) => ({ indicator: k.slice(2), score: x }));
          await api('POST', `/api/v1/performance/evaluations/${e.id}/review`, { comment: v.comment, scores }); notify(t('saved')); reload();
        }) : '') },
        { title: t('calibrate'), get: (e) => (hr ? form([
          { name: 'grade', label: t('grade'), value: e.grade || e.computedGrade },
          { name: 'reason', label: t('reason') },
        ], t('calibrate'), async (v) => { await api('POST', `/api/v1/performance/evaluations/${e.id}/calibrate`, v); notify(t('saved')); reload(); }, { inline: true }) : '') },
      ], rows))));
    }
  }
  root.replaceChildren(...parts);
}

export const PAGES = {
  complaints: { nav: 'navComplaints', roles: ['agent', 'supervisor', 'admin', 'auditor'], render: complaints },
  training: { nav: 'navTraining', roles: ['agent', 'supervisor', 'hr', 'admin', 'auditor'], render: training },
  performance: { nav: 'navPerformance', roles: ['agent', 'supervisor', 'hr', 'admin', 'auditor'], render: performance },
};
export { slaCell };
