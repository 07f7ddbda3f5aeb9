// The agent's and supervisor's daily pages: my tickets, the team queue, the
// SLA board (live), a new ticket, a ticket's detail, customers (search,
// 360° view, new), follow-up visits and festival greetings.
import { t, label, labelled, fmtTime, dayInZone, metricName, timelineKind, fmtDuration } from './i18n.js';
import { api, h, form, table, section, badge, slaCell, notify, showError, qs, link, enumOptions, person, refreshSession } from './ui.js';

const SUPERVISORS = ['supervisor', 'admin'];
const AGENTS = ['agent', 'supervisor', 'admin'];
const READERS = ['agent', 'supervisor', 'admin', 'auditor'];

// Company names of customer ids, asked once per page view.
const companies = new Map();
async function companyOf(id) {
  if (!id) return '—';
  if (!companies.has(id)) {
    companies.set(id, api('GET', `/api/v1/customers/${encodeURIComponent(id)}`).then((c) => c.companyName).catch(() => id));
  }
  return companies.get(id);
}
function companyCell(id) {
  const el = h('span', {}, id ? '…' : '—');
  if (id) companyOf(id).then((n) => { el.replaceChildren(link(`#/customer/${encodeURIComponent(id)}`, n)); });
  return el;
}
function progressCell(p) {
  const v = Number(p || 0);
  return h('span', { title: `${v}%` }, h('span', { class: 'progress', 'aria-hidden': 'true' }, h('span', { style: null, dataset: { w: v } })), `${v}%`);
}
// The bar's width without inline styles (CSP): set from the data attribute.
function sizeBars(root) {
  root.querySelectorAll('.progress > span[data-w]').forEach((s) => { s.style.width = `${Math.min(100, Number(s.dataset.w))}%`; });
}

/** A customer's id from what a person typed: the id itself, or a company
 * name, USCC or contact name/phone that names exactly one customer. */
export async function customerIdOf(text) {
  const q = String(text || '').trim();
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(q)) return q;
  const tries = [{ nameContains: q }];
  if (/^[0-9A-Z]{18}$/i.test(q)) tries.push({ uscc: q.toUpperCase() });
  if (q.replace(/\D/g, '').length >= 7) tries.push({ contactPhone: q });
  else tries.push({ contactName: q });
  const found = new Map();
  for (const f of tries) {
    const r = await api('GET', `/api/v1/customers${qs({ ...f, pageSize: 5 })}`).catch(() => ({ customers: [] }));
    for (const c of r.customers || []) found.set(c.id, c);
  }
  if (found.size === 1) return [...found.keys()][0];
  throw new Error(found.size ? `${t('customerAmbiguous')}：${[...found.values()].map((c) => c.companyName).join('、')}` : `${t('customerNotFound')}：${q}`);
}

async function listTickets(filter) {
  const out = [];
  let token = '';
  for (let i = 0; i < 10; i += 1) {
    const r = await api('GET', `/api/v1/tickets${qs({ ...filter, pageSize: 100, pageToken: token })}`);
    out.push(...(r.tickets || []));
    token = r.nextPageToken;
    if (!token) break;
  }
  return out;
}

function ticketColumns(opts = {}) {
  const cols = [];
  if (opts.select) {
    cols.push({ title: t('select'), get: (r) => h('input', { type: 'checkbox', class: 'pick', value: r.id, 'aria-label': `${t('selectRow')} ${r.number}` }) });
  }
  cols.push(
    { title: t('number'), get: (r) => link(`#/ticket/${r.id}`, r.number) },
    { title: t('company'), get: (r) => companyCell(r.customerId) },
    { title: t('kind'), get: (r) => badge(r.kind) },
    { title: t('channel'), get: (r) => label(r.channel) },
    { title: t('subject'), get: (r) => r.subject },
    { title: t('status'), get: (r) => badge(r.status) },
    { title: t('priority'), get: (r) => badge(r.priority) },
    { title: t('sla'), get: (r) => slaCell(r.slaState, r.nextDueTime) },
    { title: t('due'), get: (r) => fmtTime(r.nextDueTime) },
    { title: t('progress'), get: (r) => progressCell(r.progressPercent) },
  );
  if (opts.assignee) cols.push({ title: t('assignee'), get: (r) => person(r, 'assignee') });
  return cols;
}

function byNextDue(a, b) {
  const x = a.nextDueTime ? Date.parse(a.nextDueTime) : Infinity;
  const y = b.nextDueTime ? Date.parse(b.nextDueTime) : Infinity;
  return x - y;
}

/** Calls `refresh` (at most every second) whenever a ticket the person may
 * see changes or its SLA moves, from the event stream; the stop function. */
const TICKET_EVENTS = ['warning', 'breached', 'fulfilled', 'paused', 'resumed', 'escalated', 'ticket_created', 'ticket_updated', 'ticket_assigned', 'ticket_status', 'ticket_message'];
function live(refresh, state) {
  const es = new EventSource('/api/v1/events');
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh().catch(showError), 1000); };
  for (const k of TICKET_EVENTS) es.addEventListener(k, soon);
  es.onopen = () => { if (state) { state.className = 'live on'; state.textContent = t('liveOn'); } };
  es.onerror = () => { if (state) { state.className = 'live off'; state.textContent = t('liveOff'); } refreshSession(); };
  return () => { es.close(); clearTimeout(timer); };
}

async function mine(root, { me }) {
  const tbl = h('div', { class: 'scroll', id: 'my-tickets' });
  const state = h('span', { class: 'live off', id: 'live-state' }, t('liveOff'));
  const refresh = async () => {
    const open = (await listTickets({ assignee: me.staffId, openOnly: 'true' })).sort(byNextDue);
    tbl.replaceChildren(table(ticketColumns(), open, { caption: t('navMine') }));
    sizeBars(tbl);
  };
  await refresh();
  root.replaceChildren(h('h1', {}, t('navMine'), ' ', state), tbl);
  return live(refresh, state);
}

async function queue(root, { query }) {
  const f = Object.fromEntries(query);
  const tab = f.tab || 'all';
  // The service filters; the page sorts by next due and splits off the
  // unassigned and the paused (states the list has no filter for).
  const serverFilter = {
    status: f.status, openOnly: f.status ? undefined : 'true', queue: f.queue, assignee: f.assignee, escalatedTo: f.escalatedTo,
    kind: f.kind, channel: f.channel, category: f.category, filingPeriod: f.filingPeriod, text: f.text,
  };
  if (f.sla === 'at_risk' || f.sla === 'breached') serverFilter.sla = f.sla;
  const load = async () => {
    let rows = await listTickets(serverFilter);
    if (tab === 'unassigned') rows = rows.filter((r) => !r.assignee);
    if (f.sla === 'paused') rows = rows.filter((r) => r.slaState === 'SLA_STATE_PAUSED');
    return rows.sort(byNextDue);
  };
  const rows = await load();
  const go = (v) => { location.hash = `#/queue${qs({ ...v, tab })}`; };
  const filters = form([
    { name: 'queue', label: t('queue'), value: f.queue, list: 'dl-queues' },
    { name: 'kind', label: t('kind'), type: 'select', value: f.kind, options: enumOptions(labelled('TICKET_KIND_'), t('all')) },
    { name: 'channel', label: t('channel'), type: 'select', value: f.channel, options: enumOptions(labelled('CHANNEL_'), t('all')) },
    { name: 'category', label: t('category'), value: f.category, list: 'dl-categories' },
    { name: 'status', label: t('status'), type: 'select', value: f.status, options: enumOptions(labelled('STATUS_'), t('allOpen')) },
    { name: 'assignee', label: t('assignee'), value: f.assignee, list: 'dl-people' },
    { name: 'sla', label: t('sla'), type: 'select', value: f.sla, options: [['', t('all')], ['at_risk', t('atRisk')], ['breached', t('breached')], ['paused', t('paused')]] },
    { name: 'filingPeriod', label: t('filingPeriod'), value: f.filingPeriod, placeholder: '2026-12' },
    { name: 'escalatedTo', label: t('escalatedTo'), value: f.escalatedTo, list: 'dl-people-teams' },
    { name: 'text', label: t('text'), value: f.text, type: 'search', id: 'queue-text' },
  ], t('filter'), async (v) => go(v), { title: t('filter') });
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': t('queue') },
    [['all', t('all')], ['unassigned', t('unassigned')]].map(([k, txt]) =>
      h('button', { type: 'button', 'aria-pressed': String(tab === k), onclick: () => { location.hash = `#/queue${qs({ ...f, tab: k })}`; } }, txt)));
  const grid = h('div', { class: 'scroll', id: 'queue-tickets' }, table(ticketColumns({ select: true, assignee: true }), rows, { caption: t('navQueue') }));
  const refreshGrid = async () => {
    const picked = new Set([...grid.querySelectorAll('input.pick:checked')].map((c) => c.value));
    grid.replaceChildren(table(ticketColumns({ select: true, assignee: true }), await load(), { caption: t('navQueue') }));
    grid.querySelectorAll('input.pick').forEach((c) => { c.checked = picked.has(c.value); });
    sizeBars(grid);
  };
  const bulk = form([{ name: 'assignee', label: t('bulkAssign'), required: true, id: 'bulk-assignee', list: 'dl-people' }], t('assign'), async (v) => {
    const ids = [...grid.querySelectorAll('input.pick:checked')].map((c) => c.value);
    if (!ids.length) throw new Error(t('noneSelected'));
    for (const id of ids) await api('POST', `/api/v1/tickets/${id}/assign`, { assignee: v.assignee });
    notify(`${t('assigned')}: ${ids.length}`);
    await refreshGrid();
  }, { inline: true });
  const state = h('span', { class: 'live off', id: 'live-state' }, t('liveOff'));
  root.replaceChildren(h('h1', {}, t('navQueue'), ' ', state), section(t('filter'), filters), tabs, section(t('bulkAssign'), bulk), grid);
  sizeBars(root);
  // Live: the list follows the event stream; ticked rows stay ticked.
  return live(refreshGrid, state);
}

// The SLA board: counts by queue and agent, at-risk and breached tickets,
// the live feed, the filing-period board; refreshed from the event stream.
async function board(root) {
  const counts = h('div', { class: 'counts', id: 'board-counts' });
  const byQueue = h('div', { id: 'board-queues' });
  const byAgent = h('div', { id: 'board-agents' });
  const risky = h('div', { class: 'scroll', id: 'board-risky' });
  const feed = h('ul', { class: 'feed', id: 'live-feed', 'aria-live': 'polite' });
  const state = h('span', { class: 'live off', id: 'live-state' }, t('liveOff'));
  const filing = h('div', { id: 'filing-board' });
  root.replaceChildren(h('h1', {}, t('board'), ' ', state), counts,
    h('div', { class: 'cols' }, section(t('boardByQueue'), byQueue), section(t('boardByAgent'), byAgent), section(t('liveFeed'), feed)),
    section(`${t('atRisk')} / ${t('breached')}`, risky), section(t('filingBoard'), filing));

  async function refresh() {
    const [o, live, atRisk, breached] = await Promise.all([
      api('GET', '/api/v1/sla/overview'), listTickets({ openOnly: 'true' }),
      listTickets({ sla: 'at_risk', openOnly: 'true' }), listTickets({ sla: 'breached', openOnly: 'true' })]);
    const paused = live.filter((r) => r.slaState === 'SLA_STATE_PAUSED').length;
    const c = o.total || {};
    counts.title = t('countsAreTargets');
    counts.replaceChildren(
      h('div', { class: 'count' }, h('b', { id: 'count-open' }, c.open || 0), t('open')),
      h('div', { class: 'count warn' }, h('b', { id: 'count-at-risk' }, c.atRisk || 0), t('atRisk')),
      h('div', { class: 'count bad' }, h('b', { id: 'count-breached' }, c.breached || 0), t('breached')),
      h('div', { class: 'count pause' }, h('b', { id: 'count-paused' }, paused), t('paused')));
    const rowsOf = (m) => Object.entries(m || {}).map(([k, v]) => ({ k, ...v }));
    const nameOf = (k) => (o.names && o.names[k] ? `${o.names[k]}（${k}）` : k || t('unassigned'));
    const countCols = [
      { title: t('name'), get: (r) => nameOf(r.k) }, { title: t('open'), get: (r) => r.open || 0 },
      { title: t('atRisk'), get: (r) => r.atRisk || 0 }, { title: t('breached'), get: (r) => r.breached || 0 }];
    byQueue.replaceChildren(table(countCols, rowsOf(o.byQueue)));
    byAgent.replaceChildren(table(countCols, rowsOf(o.byPerson)));
    const hot = [...new Map([...breached, ...atRisk].map((r) => [r.id, r])).values()].sort(byNextDue);
    risky.replaceChildren(table(ticketColumns({ assignee: true }), hot));
    sizeBars(risky);
    filingBoard(filing, live);
  }
  await refresh();
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh().catch(showError), 400); };
  const es = new EventSource('/api/v1/events');
  const kinds = ['warning', 'breached', 'fulfilled', 'paused', 'resumed', 'escalated', 'ticket_created', 'ticket_updated', 'ticket_assigned', 'ticket_status', 'ticket_message'];
  for (const k of kinds) {
    es.addEventListener(k, async (ev) => {
      soon();
      if (!['warning', 'breached', 'escalated'].includes(k)) return;
      const d = JSON.parse(ev.data);
      let head = d.ticketId || d.complaintId || '';
      if (d.record === 'ticket' && d.ticketId) {
        try {
          const tk = await api('GET', `/api/v1/tickets/${d.ticketId}`);
          head = `${tk.number} · ${await companyOf(tk.customerId)}`;
        } catch (_) { /* not readable: the id stays */ }
      }
      const who = d.assigneeName || d.assignee || '';
      const what = { warning: t('atRisk'), breached: t('breached'), escalated: t('escalatedTo') }[k];
      const metric = d.metric ? `（${metricName(d.metric)}）` : '';
      feed.prepend(h('li', { class: k }, `${fmtTime(d.time)} ${what}${metric} — ${head}${who ? ` — ${who}` : ''}`));
    });
  }
  es.onopen = () => { state.className = 'live on'; state.textContent = t('liveOn'); };
  // The browser reconnects by itself; an expired login is renewed first.
  es.onerror = () => { state.className = 'live off'; state.textContent = t('liveOff'); refreshSession(); };
  const tick = setInterval(() => refresh().catch(() => {}), 60000);
  return () => { es.close(); clearInterval(tick); clearTimeout(timer); };
}

async function filingBoard(el, live) {
  const reqs = live.filter((r) => r.kind === 'TICKET_KIND_BUSINESS_REQUEST' && r.filingDeadline);
  const groups = new Map();
  for (const r of reqs) {
    const g = groups.get(r.filingDeadline) || { deadline: r.filingDeadline, period: r.filingPeriod, n: 0, pct: 0, provisional: false };
    g.n += 1; g.pct += Number(r.progressPercent || 0); g.provisional = g.provisional || !!r.filingDeadlineProvisional;
    groups.set(r.filingDeadline, g);
  }
  const today = dayInZone();
  const days = (d) => Math.round((Date.parse(d) - Date.parse(today)) / 86400000);
  const rows = [...groups.values()].sort((a, b) => a.deadline.localeCompare(b.deadline));
  const parts = [];
  // Next month's official deadline loaded in the default calendar?
  try {
    const cals = await api('GET', '/api/v1/sla/calendars');
    const def = (cals.calendars || []).find((c) => c.isDefault) || (cals.calendars || [])[0];
    const now = new Date(`${today}T00:00:00+08:00`);
    const next = new Date(now.getFullYear(), now.getMonth() + 1, 1);
    const ym = `${next.getFullYear()}-${String(next.getMonth() + 1).padStart(2, '0')}`;
    const loaded = def && (def.filingDeadlines || []).some((d) => d.date.startsWith(ym) && !d.provisional);
    if (!loaded || rows.some((g) => g.provisional)) parts.push(h('p', { class: 'banner', role: 'status', id: 'filing-banner' }, `${ym}：${t('filingMissing')}`));
  } catch (_) { /* calendars not readable for this role */ }
  parts.push(table([
    { title: t('deadline'), get: (g) => g.deadline + (g.provisional ? ' *' : '') },
    { title: t('filingPeriod'), get: (g) => g.period || '—' },
    { title: t('requests'), get: (g) => g.n },
    { title: t('doneShare'), get: (g) => `${Math.round(g.pct / g.n)}%` },
    { title: t('daysLeft'), get: (g) => days(g.deadline) },
  ], rows));
  el.replaceChildren(...parts);
}

async function newTicket(root, { query }) {
  const customerId = query.get('customer') || '';
  const types = await api('GET', '/api/v1/request-types').catch(() => ({ requestTypes: [] }));
  // One id per form: sending it again (a retry, a double click) returns the same ticket.
  const ticketRequest = crypto.randomUUID();
  const callRequest = crypto.randomUUID();
  const f = form([
    { name: 'customer', label: t('customer'), required: true, value: customerId, id: 'nt-customer', help: t('findCustomer') },
    { name: 'kind', label: t('kind'), type: 'select', options: enumOptions(labelled('TICKET_KIND_')), value: 'TICKET_KIND_CONSULTATION', id: 'nt-kind' },
    { name: 'channel', label: t('channel'), type: 'select', options: enumOptions(labelled('CHANNEL_')), value: 'CHANNEL_PHONE', id: 'nt-channel' },
    { name: 'priority', label: t('priority'), type: 'select', options: enumOptions(labelled('PRIORITY_')), value: 'PRIORITY_NORMAL', id: 'nt-priority' },
    { name: 'requestType', label: t('requestTypes'), type: 'select', id: 'nt-request-type', options: [['', t('none')], ...(types.requestTypes || []).map((x) => [x.name, x.name])] },
    { name: 'filingPeriod', label: t('filingPeriod'), id: 'nt-filing-period', placeholder: '2026-12' },
    { name: 'category', label: t('category'), id: 'nt-category', list: 'dl-categories' },
    { name: 'queue', label: t('queue'), id: 'nt-queue', list: 'dl-queues' },
    { name: 'subject', label: t('subject'), required: true, id: 'nt-subject' },
    { name: 'description', label: t('description'), type: 'textarea', id: 'nt-description' },
    { name: 'callerNumber', label: t('callerNumber'), id: 'nt-caller' },
    { name: 'talkSeconds', label: t('talkSeconds'), type: 'number', min: 0, id: 'nt-talk' },
    { name: 'logCall', label: t('logCall'), type: 'checkbox', value: true, id: 'nt-log-call' },
  ], t('navNew'), async (v) => {
    const cid = await customerIdOf(v.customer);
    const type = (types.requestTypes || []).find((x) => x.name === v.requestType);
    const ticket = {
      kind: type ? 'TICKET_KIND_BUSINESS_REQUEST' : v.kind, channel: v.channel, priority: v.priority, subject: v.subject, customerId: cid,
      category: v.category || (type && type.category) || undefined, queue: v.queue || undefined,
      requestType: v.requestType || undefined, filingPeriod: v.filingPeriod || undefined,
    };
    const made = await api('POST', '/api/v1/tickets', { ticket, description: v.description, requestId: ticketRequest });
    if (v.logCall && v.channel === 'CHANNEL_PHONE' && v.callerNumber) {
      try {
        await api('POST', '/api/v1/calls', { direction: 'CALL_DIRECTION_INBOUND', callerNumber: v.callerNumber, talkSeconds: v.talkSeconds || 0, ticketId: made.id, requestId: callRequest });
      } catch (e) {
        // The ticket stands; the call can be logged again on it.
        showError(e);
      }
    }
    notify(`${t('ticketCreated')}: ${made.number}`);
    location.hash = `#/ticket/${made.id}`;
  });
  root.replaceChildren(h('h1', {}, t('newTicket')), section(t('newTicket'), f));
}

async function ticketPage(root, { id }) {
  const [tk, sla, tl, calls] = await Promise.all([
    api('GET', `/api/v1/tickets/${id}`),
    api('GET', `/api/v1/tickets/${id}/sla`).catch(() => ({ targets: [] })),
    api('GET', `/api/v1/tickets/${id}/timeline`),
    api('GET', `/api/v1/calls${qs({ ticketId: id })}`).catch(() => ({ calls: [] })),
  ]);
  const reload = () => ticketPage(root, { id });
  const facts = h('dl', { class: 'kv' },
    ...[[t('company'), companyCell(tk.customerId)], [t('kind'), badge(tk.kind)], [t('channel'), label(tk.channel)],
      [t('status'), h('span', { id: 'ticket-status' }, badge(tk.status))], [t('priority'), badge(tk.priority)],
      [t('category'), tk.categoryLabel || tk.category || '—'], [t('queue'), tk.queue || '—'], [t('assignee'), person(tk, 'assignee')],
      [t('escalatedTo'), person(tk, 'escalatedTo')], [t('sla'), slaCell(tk.slaState, tk.nextDueTime)], [t('due'), fmtTime(tk.nextDueTime)],
      [t('progress'), progressCell(tk.progressPercent)], [t('filingPeriod'), tk.filingPeriod ? `${tk.filingPeriod}（${t('deadline')} ${tk.filingDeadline}）` : '—'],
      [t('satisfaction'), tk.satisfaction ? `${tk.satisfaction} / 5 ${tk.satisfactionComment || ''}` : t('notRated')]]
      .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const targets = table([
    { title: t('metric'), get: (r) => metricName(r.metric) },
    { title: t('state'), get: (r) => slaCell(r.state, r.dueTime) },
    { title: t('dueTime'), get: (r) => fmtTime(r.dueTime) },
    { title: t('remaining'), get: (r) => (r.remainingMs !== undefined && !r.fulfilTime ? fmtDuration(Number(r.remainingMs)) : '—') },
    { title: t('clock'), get: (r) => (r.clock === 'business' ? t('businessClock') : t('calendarClock')) },
  ], sla.targets || []);
  const timeline = h('ol', { class: 'timeline', id: 'timeline' }, (tl.entries || []).map((e) =>
    h('li', { class: e.kind && e.kind.includes('internal') ? 'internal' : '' },
      h('div', { class: 'meta' }, `${fmtTime(e.time)} · ${e.authorName || e.author || '—'} · ${timelineKind(e.kind)}`), e.body)));
  const reply = form([
    { name: 'kind', label: t('reply'), type: 'select', id: 'reply-kind', options: [['MESSAGE_KIND_PUBLIC_REPLY', t('replyPublic')], ['MESSAGE_KIND_INTERNAL_NOTE', t('replyInternal')]] },
    { name: 'body', label: t('detail'), type: 'textarea', required: true, id: 'reply-body' },
  ], t('send'), async (v) => { await api('POST', `/api/v1/tickets/${id}/messages`, v); notify(t('saved')); reload(); });
  const status = form([
    { name: 'status', label: t('status'), type: 'select', id: 'status-select', value: tk.status, options: enumOptions(labelled('STATUS_')) },
    { name: 'reason', label: t('reason'), id: 'status-reason' },
    { name: 'escalatedTo', label: t('escalatedTo'), id: 'status-escalated', list: 'dl-people-teams' },
  ], t('changeStatus'), async (v) => {
    await api('POST', `/api/v1/tickets/${id}/status`, { status: v.status, reason: v.reason, escalatedTo: v.escalatedTo || undefined });
    notify(t('saved')); reload();
  });
  const assign = form([
    { name: 'assignee', label: t('assignee'), value: tk.assignee, id: 'assign-to', list: 'dl-people' },
    { name: 'queue', label: t('queue'), value: tk.queue, list: 'dl-queues' },
  ], t('assign'), async (v) => { await api('POST', `/api/v1/tickets/${id}/assign`, v); notify(t('assigned')); reload(); }, { inline: true });
  const checks = [];
  const box = (kind, item, done) => {
    const cid = `chk-${kind}-${checks.length}`;
    const c = h('input', { type: 'checkbox', id: cid, checked: done, disabled: done, dataset: { kind, name: item } });
    checks.push(c);
    return h('div', { class: 'field check' }, c, h('label', { for: cid }, item));
  };
  const checklist = h('div', {},
    (tk.materials || []).length ? h('h3', {}, t('materials')) : null, (tk.materials || []).map((m) => box('m', m.name, m.received)),
    (tk.steps || []).length ? h('h3', {}, t('steps')) : null, (tk.steps || []).map((s) => box('s', s.name, s.done)),
    (tk.materials || []).length + (tk.steps || []).length ? h('button', { type: 'button', onclick: async () => {
      const pick = (k) => checks.filter((c) => c.dataset.kind === k && c.checked && !c.disabled).map((c) => c.dataset.name);
      try { await api('POST', `/api/v1/tickets/${id}/progress`, { materialsReceived: pick('m'), stepsDone: pick('s') }); notify(t('saved')); reload(); } catch (e) { showError(e); }
    } }, t('save')) : h('p', { class: 'empty' }, t('nothing')));
  const fb = tk.kind === 'TICKET_KIND_FEEDBACK' ? section(t('feedback'),
    h('dl', { class: 'kv' }, h('dt', {}, t('department')), h('dd', {}, tk.department || '—'), h('dt', {}, t('departmentResponse')), h('dd', {}, tk.departmentResponse || '—')),
    form([{ name: 'department', label: t('department'), required: true }], t('routeFeedback'), async (v) => { await api('POST', `/api/v1/tickets/${id}/feedback/route`, v); reload(); }, { inline: true }),
    form([{ name: 'response', label: t('departmentResponse'), required: true }], t('recordResponse'), async (v) => { await api('POST', `/api/v1/tickets/${id}/feedback/response`, v); reload(); }, { inline: true }),
    form([{ name: 'message', label: t('result'), required: true }], t('sendResult'), async (v) => { await api('POST', `/api/v1/tickets/${id}/feedback/result`, v); reload(); }, { inline: true })) : null;
  const callList = table([
    { title: t('time'), get: (c) => fmtTime(c.offeredTime || c.answeredTime) }, { title: t('callerNumber'), get: (c) => c.callerNumber || '—' },
    { title: t('assignee'), get: (c) => person(c, 'agent') }, { title: t('talkSeconds'), get: (c) => c.talkSeconds || 0 }, { title: t('notes'), get: (c) => c.note || '' },
  ], calls.calls || []);
  root.replaceChildren(
    h('h1', {}, `${tk.number} · ${tk.subject}`),
    h('div', { class: 'cols' },
      section(t('details'), facts),
      section(t('targets'), targets),
      section(t('changeStatus'), status, assign)),
    h('div', { class: 'cols' }, section(t('timeline'), timeline, reply), h('div', {}, section(`${t('materials')} / ${t('steps')}`, checklist), fb, section(t('calls'), callList))));
  sizeBars(root);
}

async function customers(root, { query }) {
  const q = query.get('q') || '';
  const results = h('div', { class: 'scroll', id: 'customer-results' });
  const search = form([{ name: 'q', label: t('findCustomer'), value: q, type: 'search', id: 'customer-search' }], t('search'),
    async (v) => { location.hash = `#/customers${qs({ q: v.q })}`; }, { inline: true });
  if (q) {
    const digits = q.replace(/\D/g, '');
    const tries = [{ nameContains: q }];
    if (/^[0-9A-Z]{18}$/i.test(q)) tries.push({ uscc: q.toUpperCase() });
    if (digits.length >= 7) tries.push({ contactPhone: q });
    else tries.push({ contactName: q });
    const seen = new Map();
    for (const f of tries) {
      const r = await api('GET', `/api/v1/customers${qs({ ...f, pageSize: 50 })}`).catch(() => ({ customers: [] }));
      for (const c of r.customers || []) seen.set(c.id, c);
    }
    results.append(table([
      { title: t('companyName'), get: (c) => link(`#/customer/${c.id}`, c.companyName) },
      { title: t('uscc'), get: (c) => c.uscc }, { title: t('tier'), get: (c) => badge(c.serviceTier) },
      { title: t('taxpayerType'), get: (c) => label(c.taxpayerType) }, { title: t('status'), get: (c) => badge(c.lifecycleStatus) },
    ], [...seen.values()]));
  }
  const create = form([
    { name: 'companyName', label: t('companyName'), required: true, id: 'nc-name' },
    { name: 'uscc', label: t('uscc'), required: true, id: 'nc-uscc' },
    { name: 'taxpayerType', label: t('taxpayerType'), type: 'select', options: enumOptions(labelled('TAXPAYER_TYPE_')), id: 'nc-taxpayer' },
    { name: 'serviceTier', label: t('tier'), type: 'select', options: enumOptions(labelled('SERVICE_TIER_')), value: 'SERVICE_TIER_STANDARD', id: 'nc-tier' },
    { name: 'industry', label: t('industry') }, { name: 'region', label: t('region') },
    { name: 'contactName', label: t('contactName'), id: 'nc-contact' },
    { name: 'contactMobile', label: t('contactMobile'), id: 'nc-mobile' },
    { name: 'contactEmail', label: t('contactEmail'), type: 'email' },
  ], t('newCustomer'), async (v) => {
    if (!v.contactName && (v.contactMobile || v.contactEmail)) throw new Error(`${t('contactName')}：${t('requiredWithContact')}`);
    const contacts = v.contactName ? [{ name: v.contactName, mobile: v.contactMobile, email: v.contactEmail, primary: true }] : [];
    const c = await api('POST', '/api/v1/customers', {
      customer: { companyName: v.companyName, uscc: v.uscc, taxpayerType: v.taxpayerType, serviceTier: v.serviceTier, industry: v.industry, region: v.region },
      contacts, requestId: crypto.randomUUID(),
    });
    notify(`${t('created')}: ${c.companyName}`);
    location.hash = `#/customer/${c.id}`;
  });
  root.replaceChildren(h('h1', {}, t('customers')), section(t('search'), search, results), section(t('newCustomer'), create));
}

async function customer360(root, { id }) {
  const [o, tax, consents, visits, plan] = await Promise.all([
    api('GET', `/api/v1/customers/${id}/overview`),
    api('GET', `/api/v1/customers/${id}/tax-profile`).catch(() => null),
    api('GET', `/api/v1/customers/${id}/consents`).catch(() => ({ consents: [] })),
    api('GET', `/api/v1/customers/${id}/follow-up-visits`).catch(() => ({ visits: [] })),
    api('GET', `/api/v1/customers/${id}/follow-up-plan`).catch(() => null),
  ]);
  const c = o.customer;
  const profile = h('dl', { class: 'kv' }, ...[[t('uscc'), c.uscc], [t('taxpayerType'), label(c.taxpayerType)], [t('tier'), badge(c.serviceTier)],
    [t('status'), badge(c.lifecycleStatus)], [t('industry'), c.industry || '—'], [t('region'), c.region || '—'],
    [t('owner'), person(c, 'accountManager')], [t('tags'), (c.tags || []).join('、') || '—'],
    [t('preferences'), c.preferences ? `${label(c.preferences.preferredChannel)} · ${c.preferences.greetingOptIn ? t('greetings') : '—'}` : '—'],
    [t('satisfaction'), o.satisfaction && o.satisfaction.ratings ? `${Number(o.satisfaction.average).toFixed(1)} / 5（${o.satisfaction.ratings}）` : t('notRated')]]
    .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const contacts = table([
    { title: t('name'), get: (x) => x.name }, { title: t('role'), get: (x) => x.role || '—' },
    { title: t('mobile'), get: (x) => x.mobile || '—' }, { title: t('email'), get: (x) => x.email || '—' },
    { title: t('primary'), get: (x) => (x.primary ? t('yes') : '') },
  ], c.contacts || []);
  const taxBox = h('div', { id: 'tax-profile' });
  const showTax = (p, clear) => {
    if (!p) { taxBox.replaceChildren(h('p', { class: 'empty' }, t('nothing'))); return; }
    taxBox.replaceChildren(h('dl', { class: 'kv' }, ...[[t('taxNumber'), p.taxRegistrationNumber], [t('taxAuthority'), p.taxAuthority],
      [t('bankName'), p.bankName], [t('bankAccount'), p.bankAccount], [t('revenueBand'), p.revenueBand], [t('notes'), p.taxStatusNotes]]
      .flatMap(([k, v]) => [h('dt', {}, k), h('dd', { class: 'tax-value' }, v || '—')])),
    h('p', { class: 'help', id: 'tax-state' }, clear ? t('revealed') : t('masked')));
  };
  showTax(tax, false);
  const reveal = form([{ name: 'purpose', label: t('purpose'), required: true, id: 'reveal-purpose' }], t('reveal'), async (v) => {
    const p = await api('GET', `/api/v1/customers/${id}/tax-profile${qs({ unmasked: 'true', purpose: v.purpose })}`);
    showTax(p, true);
  }, { inline: true });
  const editTax = form([
    { name: 'taxRegistrationNumber', label: t('taxNumber'), id: 'tax-number' },
    { name: 'taxAuthority', label: t('taxAuthority'), id: 'tax-authority' },
    { name: 'revenueBand', label: t('revenueBand') },
    { name: 'purpose', label: t('saveReason'), required: true, id: 'tax-save-purpose' },
  ], `${t('save')} · ${t('taxProfile')}`, async (v) => {
    // The bank account is changed only with a second person's approval
    // (a proposal), never here; left empty it keeps what is recorded.
    const { purpose, ...taxProfile } = v;
    await api('PUT', `/api/v1/customers/${id}/tax-profile`, { taxProfile, purpose });
    notify(t('saved'));
    customer360(root, { id });
  });
  const ticketRows = o.openTickets || [];
  const complaintsRows = Array.isArray(o.complaints) ? o.complaints : (o.complaints && o.complaints.complaints) || [];
  root.replaceChildren(
    h('h1', {}, c.companyName, ' ', link(`#/new?customer=${c.id}`, `+ ${t('navNew')}`)),
    h('div', { class: 'cols' }, section(t('details'), profile), section(t('contacts'), contacts),
      section(t('taxProfile'), taxBox, tax ? reveal : null, h('details', {}, h('summary', {}, `${t('save')} · ${t('taxProfile')}`), editTax))),
    section(t('tickets'), h('div', { class: 'scroll' }, table(ticketColumns({ assignee: true }), ticketRows))),
    h('div', { class: 'cols' },
      section(t('followUps'), plan ? h('p', {}, `${t('owner')}: ${person(plan, 'owner')} · ${t('due')}: ${plan.nextDueDate || '—'}`) : null,
        table([{ title: t('time'), get: (x) => x.visitDate }, { title: t('channel'), get: (x) => label(x.channel) },
          { title: t('outcome'), get: (x) => x.outcome }, { title: t('owner'), get: (x) => person(x, 'visitedBy') }], visits.visits || [])),
      section(t('consents'), table([{ title: t('purpose'), get: (x) => x.purpose }, { title: t('state'), get: (x) => (x.live ? t('yes') : t('no')) },
        { title: t('time'), get: (x) => fmtTime(x.grantTime) }], consents.consents || [])),
      section(t('complaints'), table([{ title: t('complaintNo'), get: (x) => link(`#/complaints/${x.id}`, x.number || x.id) },
        { title: t('status'), get: (x) => badge(x.status) }, { title: t('summary'), get: (x) => x.summary || x.subject || '' }], complaintsRows))));
  sizeBars(root);
}

async function followUps(root, { me }) {
  const due = await api('GET', `/api/v1/follow-ups/due${qs({ dueBy: dayInZone(new Date(Date.now() + 7 * 86400000)), pageSize: 200 })}`);
  const today = dayInZone();
  const visitForm = form([
    { name: 'customerId', label: t('customer'), required: true, id: 'visit-customer', help: t('findCustomer') },
    { name: 'channel', label: t('channel'), type: 'select', options: enumOptions(labelled('CHANNEL_')), value: 'CHANNEL_PHONE' },
    { name: 'outcome', label: t('outcome'), required: true },
    { name: 'satisfaction', label: t('satisfaction'), type: 'number', min: 1, max: 5 },
    { name: 'notes', label: t('notes'), type: 'textarea' },
  ], t('visitForm'), async (v) => {
    const customerId = await customerIdOf(v.customerId);
    await api('POST', '/api/v1/follow-up-visits', { customerId, visitDate: today, channel: v.channel, outcome: v.outcome, satisfaction: v.satisfaction || 0, notes: v.notes, visitedBy: me.staffId });
    notify(t('saved')); followUps(root, { me });
  });
  const dueTable = table([
    { title: t('company'), get: (p) => link(`#/customer/${p.customerId}`, p.companyName) },
    { title: t('owner'), get: (p) => person(p, 'owner') },
    { title: t('due'), get: (p) => h('span', { class: p.nextDueDate < today ? 'sla SLA_STATE_BREACHED' : '' }, p.nextDueDate) },
    { title: t('visitForm'), get: (p) => h('button', { type: 'button', onclick: () => { visitForm.controls.customerId.value = p.customerId; visitForm.controls.outcome.focus(); } }, t('visitForm')) },
  ], due.plans || []);
  const year = Number(today.slice(0, 4));
  const targets = h('div', { id: 'greeting-targets' });
  const pick = form([
    { name: 'festival', label: t('festival'), type: 'select', options: enumOptions(labelled('FESTIVAL_')), id: 'festival' },
    { name: 'year', label: 'Year / 年', type: 'number', value: year },
  ], t('targetsList'), async (v) => {
    const r = await api('GET', `/api/v1/greetings/targets${qs({ festival: v.festival, year: v.year, pageSize: 500 })}`);
    const rows = r.targets || [];
    const csv = () => {
      const esc = (s) => { const x = String(s ?? ''); const safe = /^[=+\-@\t\r]/.test(x) ? `'${x}` : x; return `"${safe.replace(/"/g, '""')}"`; };
      const lines = [[t('company'), t('contactName'), t('channel'), t('contacts'), t('sent')].map(esc).join(',')]
        .concat(rows.map((x) => [x.companyName, x.contactName, label(x.preferredChannel), x.contactAddress, x.alreadySent ? t('yes') : t('no')].map(esc).join(',')));
      const a = h('a', { href: URL.createObjectURL(new Blob([`\ufeff${lines.join('\r\n')}`], { type: 'text/csv' })), download: `greetings-${v.festival}-${v.year}.csv` });
      document.body.append(a); a.click(); a.remove();
    };
    targets.replaceChildren(h('button', { type: 'button', onclick: csv }, t('exportCsv')), table([
      { title: t('company'), get: (x) => x.companyName }, { title: t('contactName'), get: (x) => x.contactName },
      { title: t('channel'), get: (x) => label(x.preferredChannel) }, { title: t('contacts'), get: (x) => x.contactAddress },
      { title: t('sent'), get: (x) => (x.alreadySent ? t('yes') : h('button', { type: 'button', onclick: async (ev) => {
        try { await api('POST', '/api/v1/greetings', { customerId: x.customerId, festival: v.festival, year: v.year, channel: x.preferredChannel }); ev.target.replaceWith(t('yes')); } catch (e) { showError(e); }
      } }, t('markSent'))) },
    ], rows));
  }, { inline: true });
  root.replaceChildren(h('h1', {}, t('navFollowUps')),
    h('div', { class: 'cols' }, section(t('dueVisits'), dueTable), section(t('visitForm'), visitForm)),
    section(t('greetings'), pick, targets));
}

export const PAGES = {
  mine: { nav: 'navMine', roles: AGENTS, render: mine },
  queue: { nav: 'navQueue', roles: READERS, render: queue },
  board: { nav: 'navBoard', roles: AGENTS, render: board },
  new: { nav: 'navNew', roles: AGENTS, render: newTicket },
  ticket: { nav: 'navMine', roles: READERS, render: ticketPage },
  customers: { nav: 'navCustomers', roles: READERS, render: customers },
  customer: { nav: 'navCustomers', roles: READERS, render: customer360 },
  followups: { nav: 'navFollowUps', roles: AGENTS, render: followUps },
};
export { SUPERVISORS, listTickets, companyCell };
