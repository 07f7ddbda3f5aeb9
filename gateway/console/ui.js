// Building blocks of the console: the API client (cookie login, CSRF,
// refresh on expiry), element builders that never parse HTML, tables,
// forms with a label on every control, and notices.
import { t, label, fmtTime, fmtRemaining } from './i18n.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function csrf() {
  // Over TLS the cookie carries the __Host- prefix (no sibling site can set it).
  const m = document.cookie.match(location.protocol === 'https:' ? /(?:^|;\s*)__Host-kefu_csrf=([^;]+)/ : /(?:^|;\s*)kefu_csrf=([^;]+)/);
  return m ? m[1] : '';
}

let refreshing = null;
/** Renews the console's access token with its refresh cookie (once at a time). */
export function refreshSession() {
  if (!refreshing) {
    refreshing = fetch('/console/session/refresh', { method: 'POST', headers: { 'x-csrf-token': csrf() } })
      .then((r) => r.ok)
      .finally(() => { setTimeout(() => { refreshing = null; }, 0); });
  }
  return refreshing;
}

/** One REST call; JSON in and out. A 401 renews the login once and retries. */
export async function api(method, path, body, opts = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrf();
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
  if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
  const send = () => fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let r = await send();
  if (r.status === 401 && !opts.noRefresh && (await refreshSession())) r = await send();
  if (r.status === 401 && !opts.noRefresh) window.dispatchEvent(new CustomEvent('kefu:logged-out'));
  if (r.status === 204) return null;
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, typeof data === 'object' ? data : { detail: String(data) });
  return data;
}

/** An element: h('div', {class: 'x', onclick: f}, 'text', child). Text is never parsed as HTML. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let idSeq = 0;
export const uid = (p = 'f') => `${p}-${++idSeq}`;

/** A notice in the page's live region. */
export function notify(text, kind = 'ok') {
  const box = document.getElementById('notices');
  if (!box) return;
  const n = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(n);
  setTimeout(() => n.remove(), kind === 'error' ? 12000 : 3000);
}

/** What went wrong, for a person: the problem's detail and each field at fault. */
export function problemText(e) {
  if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
  const v = (e.problem.violations || []).map((x) => `${x.field}：${x.description}`);
  const head = `${t('error')} ${e.status}`;
  return v.length ? `${head} — ${v.join('；')}` : `${head} — ${e.message}`;
}

export function showError(e) {
  notify(problemText(e), 'error');
}

/**
 * A form. fields: [{name, label, type: text|password|number|select|textarea|checkbox|datetime, options: [[value, text]], required, value, placeholder}].
 * onSubmit(values) may return a promise; errors are shown beside the form.
 */
export function form(fields, submitText, onSubmit, opts = {}) {
  const err = h('p', { class: 'form-error', role: 'alert' });
  const controls = {};
  const rows = fields.map((f) => {
    const id = f.id || uid(f.name);
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name: f.name, required: f.required },
        (f.options || []).map(([v, text]) => h('option', { value: v, selected: String(f.value ?? '') === String(v) }, text)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { id, name: f.name, required: f.required, rows: f.rows || 3, placeholder: f.placeholder }, f.value || '');
    } else if (f.type === 'checkbox') {
      input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
    } else {
      input = h('input', {
        id, name: f.name, type: f.type || 'text', required: f.required, value: f.value ?? '',
        placeholder: f.placeholder, autocomplete: f.autocomplete || (f.type === 'password' ? 'current-password' : 'off'),
        min: f.min, max: f.max, step: f.step, list: f.list,
      });
    }
    controls[f.name] = input;
    const lab = h('label', { for: id }, f.label, f.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);
    return h('div', { class: f.type === 'checkbox' ? 'field check' : 'field' }, f.type === 'checkbox' ? [input, lab] : [lab, input],
      f.help ? h('small', { class: 'help' }, f.help) : null);
  });
  const button = h('button', { type: 'submit', class: 'primary' }, submitText);
  const el = h('form', { class: opts.inline ? 'form inline' : 'form', 'aria-label': opts.title || submitText }, rows, h('div', { class: 'actions' }, button), err);
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const values = {};
    for (const f of fields) {
      const c = controls[f.name];
      values[f.name] = f.type === 'checkbox' ? c.checked : f.type === 'number' ? (c.value === '' ? undefined : Number(c.value)) : c.value.trim();
    }
    button.disabled = true;
    try {
      await onSubmit(values, el);
    } catch (e) {
      err.textContent = problemText(e);
    } finally {
      button.disabled = false;
    }
  });
  el.controls = controls;
  return el;
}

/** A table. columns: [{title, get(row) → text or Node, class}]. */
export function table(columns, rows, opts = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, opts.empty || t('nothing'));
  return h('table', { class: 'grid', 'aria-label': opts.caption || null },
    opts.caption ? h('caption', {}, opts.caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.title)))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: opts.rowData ? opts.rowData(r) : {} },
      columns.map((c) => h('td', { class: c.class }, c.get(r)))))));
}

export function section(title, ...body) {
  return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), ...body);
}

/** An enum value as people read it. */
export function badge(value, cls = '') {
  return h('span', { class: `badge ${cls} ${value || ''}` }, label(value));
}

/** The SLA state with a countdown to the next due time, coloured by state. */
export function slaCell(state, due) {
  const el = h('span', { class: `sla ${state || ''}`, dataset: { due: due || '', state: state || '' } });
  renderSla(el);
  return el;
}

export function renderSla(el) {
  const state = el.dataset.state;
  const due = el.dataset.due;
  const parts = [label(state)];
  const settled = ['SLA_STATE_FULFILLED', 'SLA_STATE_FULFILLED_LATE', 'SLA_STATE_PAUSED'].includes(state);
  // A breached ticket's next due time may be another target's, still ahead.
  const breachedAhead = state === 'SLA_STATE_BREACHED' && due && new Date(due).getTime() > Date.now();
  if (due && !settled && !breachedAhead) parts.push(fmtRemaining(due));
  el.textContent = parts.join(' · ');
  el.title = due ? fmtTime(due) : '';
}

setInterval(() => document.querySelectorAll('span.sla').forEach(renderSla), 15000);

let listsLoaded = null;
/**
 * Suggestions for fields that take a code (people, teams and queues,
 * categories): <datalist> elements `dl-people`, `dl-queues`, `dl-people-teams`
 * and `dl-categories`, loaded once per page load from what the role may read.
 */
export function loadLists() {
  if (!listsLoaded) {
    const get = (path, key) => api('GET', path).then((r) => r[key] || []).catch(() => []);
    listsLoaded = Promise.all([get('/api/v1/staff/people?status=PERSON_STATUS_ACTIVE&pageSize=500', 'people'), get('/api/v1/staff/teams', 'teams'), get('/api/v1/categories', 'categories')])
      .then(([people, teams, cats]) => {
        const opts = (items) => items.map(([v, text]) => h('option', { value: v }, text));
        const p = people.map((x) => [x.staffId, `${x.displayName || x.name}（${x.position || ''}）`]);
        const q = teams.map((x) => [x.code, `${x.name}（${label(x.kind)}）`]);
        document.body.append(
          h('datalist', { id: 'dl-people' }, opts(p)),
          h('datalist', { id: 'dl-queues' }, opts(q)),
          h('datalist', { id: 'dl-people-teams' }, opts([...p, ...q])),
          h('datalist', { id: 'dl-categories' }, opts(cats.map((c) => [c.code, c.label]))));
      });
  }
  return listsLoaded;
}

/** The values of an object's keys from a query string of the hash route. */
export function params(q) {
  return Object.fromEntries(new URLSearchParams(q || ''));
}

export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function link(href, text) {
  return h('a', { href }, text);
}

/** Options of a select from enum values. */
export function enumOptions(values, withEmpty) {
  const o = values.map((v) => [v, label(v)]);
  return withEmpty ? [['', withEmpty], ...o] : o;
}

export function person(row, field) {
  const id = row[field];
  if (!id) return '—';
  const name = row[`${field}Name`];
  return name ? `${name}（${id}）` : id;
}
