// Settings (accounts and their role grants, teams, categories, request
// types, SLA policies in hours, calendars) and the auditor's view of the
// audit trails with their chain verification.
import { t, label, labelled, fmtTime, metricName, dayInZone } from './i18n.js';
import { api, h, form, table, section, badge, notify, showError, qs, enumOptions, person } from './ui.js';
import { companyCell, customerIdOf } from './pages.js';

const ROLES = ['agent', 'supervisor', 'hr', 'admin', 'auditor'];
const ROLE_ZH = { agent: '坐席', supervisor: '主管', hr: '人事', admin: '管理员', auditor: '审计员' };
const roleText = (r) => (document.documentElement.lang === 'en' ? r : ROLE_ZH[r] || r);

function hours(seconds) { return Math.round((Number(seconds || 0) / 3600) * 100) / 100; }

async function settings(root, { me }) {
  const admin = me.roles.includes('admin');
  const get = (path, empty) => api('GET', path).catch(() => empty);
  const [accounts, grants, teams, cats, types, policies, cals] = await Promise.all([
    get('/api/v1/accounts', { accounts: [] }), get('/api/v1/role-grants', { roleGrants: [] }), get('/api/v1/staff/teams', { teams: [] }),
    get('/api/v1/categories', { categories: [] }), get('/api/v1/request-types', { requestTypes: [] }),
    get('/api/v1/sla/policies', { policies: [] }), get('/api/v1/sla/calendars', { calendars: [] }),
  ]);
  const reload = () => settings(root, { me });
  const editable = me.roles.some((r) => ['supervisor', 'admin'].includes(r));
  const parts = [h('h1', {}, t('settings'))];
  if (admin) {
    parts.push(section(t('newAgent'), form([
      { name: 'staffId', label: t('staffId'), required: true, id: 'na-staff-id' },
      { name: 'name', label: t('displayName'), required: true, id: 'na-name' },
      { name: 'position', label: t('position'), value: '客服专员', id: 'na-position' },
      { name: 'hireDate', label: t('hireDate'), type: 'date', value: dayInZone(), required: true, id: 'na-hire-date' },
      { name: 'role', label: t('roles'), type: 'select', options: ROLES.map((r) => [r, roleText(r)]), value: 'agent', id: 'na-role' },
      { name: 'username', label: t('username'), required: true, id: 'na-username' },
      { name: 'password', label: t('initialPassword'), type: 'password', required: true, id: 'na-password', autocomplete: 'new-password' },
      { name: 'mustChange', label: t('mustChangeBox'), type: 'checkbox', value: true, id: 'na-must-change' },
      { name: 'reason', label: t('reason'), value: '新员工入职', id: 'na-reason' },
    ], t('newAgent'), async (v) => {
      const staffId = v.staffId.toLowerCase();
      try {
        await api('POST', '/api/v1/staff/people', { person: { staffId, name: v.name, displayName: v.name, position: v.position, hireDate: v.hireDate, status: 'PERSON_STATUS_ACTIVE' } });
      } catch (e) {
        if (e.status !== 409) throw e;
      }
      await api('POST', '/api/v1/accounts', { username: v.username, password: v.password, roles: [v.role], staffId, reason: v.reason, mustChangePassword: v.mustChange });
      notify(t('accountCreated'));
      reload();
    })));
  }
  const pending = (grants.roleGrants || []).filter((g) => g.state === 'pending');
  parts.push(h('div', { class: 'cols' },
    section(t('accounts'), table([
      { title: t('username'), get: (a) => a.username }, { title: t('staffId'), get: (a) => a.staffId },
      { title: t('roles'), get: (a) => (a.roles || []).map(roleText).join('、') || '—' },
      { title: t('state'), get: (a) => (a.disabled ? t('disabled') : t('enabled')) },
      { title: t('actions'), get: (a) => (admin && a.staffId !== me.staffId ? h('button', { type: 'button', onclick: async () => {
        try { await api('PATCH', `/api/v1/accounts/${a.id}`, { disabled: !a.disabled, reason: a.disabled ? '恢复账号' : '停用账号' }); notify(t('saved')); reload(); } catch (e) { showError(e); }
      } }, a.disabled ? t('enable') : t('disable')) : '') },
    ], accounts.accounts || [])),
    section(t('roleGrants'), table([
      { title: t('username'), get: (g) => g.username }, { title: t('roles'), get: (g) => (g.roles || []).map(roleText).join('、') },
      { title: t('reason'), get: (g) => g.reason }, { title: t('actor'), get: (g) => g.requestedBy }, { title: t('time'), get: (g) => fmtTime(g.requestTime) },
      { title: t('actions'), get: (g) => (admin ? h('span', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', dataset: { grant: g.username }, onclick: async () => {
          try { await api('POST', `/api/v1/role-grants/${g.id}/approve`, {}); notify(t('approved')); reload(); } catch (e) { showError(e); }
        } }, t('approve')),
        h('button', { type: 'button', onclick: async () => {
          const note = prompt(t('reason'));
          if (!note) return;
          try { await api('POST', `/api/v1/role-grants/${g.id}/reject`, { note }); reload(); } catch (e) { showError(e); }
        } }, t('reject'))) : '') },
    ], pending, { caption: t('roleGrants') }))));
  parts.push(h('div', { class: 'cols' },
    section(t('teams'), table([
      { title: t('name'), get: (x) => `${x.name}（${x.code}）` }, { title: t('kind'), get: (x) => label(x.kind) },
      { title: t('members'), get: (x) => (x.members || []).map((m) => m.staffId + (m.lead ? '★' : '')).join('、') },
    ], teams.teams || [])),
    section(t('category'), table([
      { title: t('name'), get: (x) => `${x.label}（${x.code}）` }, { title: t('state'), get: (x) => (x.active ? t('yes') : t('no')) },
    ], cats.categories || []), editable ? form([
      { name: 'code', label: t('code'), required: true, id: 'cat-code', placeholder: 'invoice' },
      { name: 'label', label: t('name'), required: true, id: 'cat-label', placeholder: '发票' },
      { name: 'reason', label: t('saveReason'), required: true },
    ], t('addCategory'), async (v) => {
      const categories = (cats.categories || []).filter((c) => c.code !== v.code).concat([{ code: v.code, label: v.label, active: true }]);
      await api('PUT', '/api/v1/categories', { categories, etag: cats.etag, reason: v.reason }, { ifMatch: cats.etag ? `"${cats.etag}"` : undefined });
      notify(t('saved'));
      reload();
    }) : null),
    section(t('requestTypes'), table([
      { title: t('name'), get: (x) => x.name }, { title: t('category'), get: (x) => x.category },
      { title: t('materials'), get: (x) => (x.requiredMaterials || []).join('、') }, { title: t('steps'), get: (x) => (x.steps || []).join(' → ') },
    ], types.requestTypes || []), editable ? form([
      { name: 'name', label: t('name'), required: true, placeholder: '一般纳税人登记' },
      { name: 'category', label: t('category'), type: 'select', options: (cats.categories || []).map((c) => [c.code, c.label]) },
      { name: 'materials', label: t('materials'), placeholder: '营业执照，财务负责人身份证' },
      { name: 'steps', label: t('steps'), placeholder: '收集材料，网上申请，税务局审核' },
    ], t('saveRequestType'), async (v) => {
      const list = (x) => (x ? x.split(/[,，、\n]+/).map((y) => y.trim()).filter(Boolean) : []);
      await api('PUT', `/api/v1/request-types/${encodeURIComponent(v.name)}`, { name: v.name, category: v.category, requiredMaterials: list(v.materials), steps: list(v.steps) });
      notify(t('saved'));
      reload();
    }) : null)));
  const policyRows = [];
  for (const p of policies.policies || []) for (const m of p.metrics || []) policyRows.push({ p, m });
  parts.push(section(t('policies'), h('div', { class: 'scroll' }, table([
    { title: t('policyId'), get: (r) => `${r.p.name}（${r.p.id}）` }, { title: t('records'), get: (r) => (r.p.recordKinds || []).join('、') || t('all') },
    { title: t('channels'), get: (r) => (r.p.channels || []).join('、') || t('all') }, { title: t('metric'), get: (r) => metricName(r.m.metric) },
    { title: `${t('due')}（${t('hoursUnit')}）`, get: (r) => (r.m.rings ? `${r.m.rings} × ${r.m.secondsPerRing || 5}s` : hours(r.m.durationSeconds)) },
    { title: t('clock'), get: (r) => (r.m.clock === 'business' ? t('businessClock') : t('calendarClock')) },
    { title: t('warnAt'), get: (r) => r.m.warnPercent || '—' },
  ], policyRows)), editable ? form([
    { name: 'id', label: t('policyId'), required: true, id: 'sp-id' },
    { name: 'name', label: t('name'), required: true, id: 'sp-name' },
    { name: 'position', label: '#', type: 'number', value: 0, id: 'sp-position' },
    { name: 'recordKinds', label: t('records'), placeholder: 'consultation,business_request,feedback', id: 'sp-kinds' },
    { name: 'channels', label: t('channels'), placeholder: 'phone,email,wechat', id: 'sp-channels' },
    { name: 'metric', label: t('metric'), type: 'select', id: 'sp-metric', options: ['first_response', 'next_response', 'resolution', 'feedback_reply'].map((m) => [m, metricName(m)]) },
    { name: 'hours', label: `${t('due')}（${t('hoursUnit')}）`, type: 'number', step: 'any', min: 0, required: true, id: 'sp-hours' },
    { name: 'clock', label: t('clock'), type: 'select', id: 'sp-clock', options: [['business', t('businessClock')], ['calendar', t('calendarClock')]] },
    { name: 'warnPercent', label: t('warnAt'), type: 'number', value: 80, min: 1, max: 99, id: 'sp-warn' },
    { name: 'reason', label: t('saveReason'), required: true, id: 'sp-reason' },
  ], t('savePolicy'), async (v) => {
    const list = (s) => (s ? s.split(/[,，\s]+/).filter(Boolean) : []);
    // Saving one metric keeps the policy's others (and its other conditions).
    const old = (policies.policies || []).find((p) => p.id === v.id) || {};
    const metric = { metric: v.metric, durationSeconds: String(Math.round(v.hours * 3600)), clock: v.clock, warnPercent: v.warnPercent };
    const policy = {
      ...old, id: v.id, name: v.name, position: v.position || 0,
      recordKinds: v.recordKinds ? list(v.recordKinds) : old.recordKinds || [], channels: v.channels ? list(v.channels) : old.channels || [],
      metrics: [...(old.metrics || []).filter((m) => m.metric !== v.metric), metric],
    };
    delete policy.etag;
    await api('PUT', `/api/v1/sla/policies/${encodeURIComponent(v.id)}`, { policy, reason: v.reason });
    notify(t('saved'));
    reload();
  }) : null));
  parts.push(section(t('calendars'), table([
    { title: t('name'), get: (c) => `${c.name}（${c.id}）${c.isDefault ? ' ★' : ''}` }, { title: 'TZ', get: (c) => c.timeZone },
    { title: '节假日 / Holidays', get: (c) => (c.holidayYears || []).join('、') },
    { title: t('filingBoard'), get: (c) => (c.filingDeadlines || []).slice(0, 6).map((d) => d.date + (d.provisional ? '*' : '')).join('、') },
  ], cals.calendars || [])));
  root.replaceChildren(...parts);
}

// What an audit entry's action means, for people (unknown ones show as kept).
const ACTIONS = {
  'customer.create': ['新建客户', 'Customer created'], 'customer.update': ['修改客户资料', 'Customer updated'],
  'customer.archive': ['归档客户', 'Customer archived'], 'customer.export': ['导出客户数据', 'Customer data exported'],
  'customer.erase': ['删除客户个人数据', 'Customer erased'], 'customer.erasure': ['删除客户个人数据', 'Customer erased'],
  'customer.bank_account': ['变更银行账户', 'Bank account changed'], 'customer.disclosure': ['对外提供数据', 'Disclosure'],
  'contact.create': ['新增联系人', 'Contact added'], 'contact.update': ['修改联系人', 'Contact updated'], 'contact.delete': ['删除联系人', 'Contact deleted'],
  'tax_profile.write': ['修改税务资料', 'Tax profile changed'], 'tax_profile.read': ['查看税务资料明文', 'Tax profile read in clear'],
  'consent.create': ['登记授权', 'Consent recorded'], 'consent.revoke': ['撤回授权', 'Consent revoked'],
  'account.create': ['新建账号', 'Account created'], 'account.password': ['修改密码', 'Password changed'], 'account.roles': ['角色变更', 'Roles changed'],
  'account.disable': ['停用账号', 'Account disabled'], 'account.enable': ['启用账号', 'Account enabled'],
  'api_key.create': ['新建 API 密钥', 'API key created'], 'api_key.revoke': ['吊销 API 密钥', 'API key revoked'],
  'approval.propose': ['提交审批', 'Proposed'], 'approval.approve': ['批准', 'Approved'], 'approval.reject': ['驳回', 'Rejected'],
  'approval.withdraw': ['撤回审批', 'Withdrawn'], 'complaint.read': ['查看投诉明文', 'Complaint read in clear'],
};
const actionText = (a) => (ACTIONS[a] ? `${ACTIONS[a][document.documentElement.lang === 'en' ? 1 : 0]}（${a}）` : a);

function chainResult(v) {
  return h('p', { class: v.intact ? 'banner' : 'form-error', role: 'status', id: 'chain-result' },
    `${v.intact ? t('chainOk') : t('chainBad')} · ${v.entriesChecked} · #${v.headSeq}${v.problem ? ` · ${v.problem}` : ''}`);
}

async function audit(root, { query }) {
  const customer = query.get('customer') || '';
  const actor = query.get('actor') || '';
  const get = (path, empty) => api('GET', path).catch(() => empty);
  const [entries, reads, gw, cp] = await Promise.all([
    get(`/api/v1/audit-entries${qs({ customerId: customer, pageSize: 200 })}`, { entries: [] }),
    get(`/api/v1/access-log${qs({ customerId: customer, actor, pageSize: 200 })}`, { entries: [] }),
    get('/api/v1/gateway-audit', { entries: [] }),
    get(`/api/v1/complaint-audit-entries${qs({ pageSize: 200 })}`, { entries: [] }),
  ]);
  const filters = form([
    { name: 'customer', label: t('customer'), value: customer, id: 'audit-customer', help: t('findCustomer') },
    { name: 'actor', label: t('actor'), value: actor, id: 'audit-actor' },
  ], t('filter'), async (v) => {
    const customer = v.customer ? await customerIdOf(v.customer) : '';
    location.hash = `#/audit${qs({ ...v, customer })}`;
  }, { inline: true });
  const verifyBox = h('div', { id: 'verify' });
  const verify = (path, method) => async () => {
    try { verifyBox.replaceChildren(chainResult(await api(method, path, method === 'POST' ? {} : undefined))); } catch (e) { showError(e); }
  };
  const entryCols = [
    { title: '#', get: (e) => e.seq }, { title: t('time'), get: (e) => fmtTime(e.time) },
    { title: t('actor'), get: (e) => `${person(e, 'actor')}${e.actorRole ? `（${e.actorRole}）` : ''}` },
    { title: t('action'), get: (e) => actionText(e.action) }, { title: t('customer'), get: (e) => (e.customerId ? companyCell(e.customerId) : e.subject || '—') },
    { title: t('purpose'), get: (e) => e.purpose || '—' }, { title: t('detail'), get: (e) => e.detail || '' },
  ];
  root.replaceChildren(h('h1', {}, t('navAudit')), section(t('filter'), filters),
    section(t('verifyChain'), h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'verify-customers', onclick: verify('/api/v1/audit-entries/verify', 'POST') }, `${t('verifyChain')} · ${t('customers')}`),
      h('button', { type: 'button', onclick: verify('/api/v1/complaint-audit-entries/verify', 'POST') }, `${t('verifyChain')} · ${t('complaints')}`),
      h('button', { type: 'button', onclick: verify('/api/v1/gateway-audit/verify', 'GET') }, `${t('verifyChain')} · ${t('accounts')}`)), verifyBox),
    section(t('accessLog'), h('div', { class: 'scroll', id: 'access-log' }, table([
      { title: t('time'), get: (e) => fmtTime(e.time) }, { title: t('actor'), get: (e) => `${person(e, 'actor')}（${e.actorRole}）` },
      { title: t('customer'), get: (e) => companyCell(e.customerId) }, { title: t('detail'), get: (e) => e.what },
    ], reads.entries || []))),
    section(t('auditTrail'), h('div', { class: 'scroll', id: 'audit-entries' }, table(entryCols, entries.entries || []))),
    section(t('complaintAudit'), h('div', { class: 'scroll' }, table(entryCols, cp.entries || []))),
    section(t('gatewayAudit'), h('div', { class: 'scroll' }, table(entryCols, gw.entries || []))));
}

export const PAGES = {
  settings: { nav: 'navSettings', roles: ['supervisor', 'admin', 'auditor'], render: settings },
  audit: { nav: 'navAudit', roles: ['admin', 'auditor'], render: audit },
};
export { badge, enumOptions, labelled };
