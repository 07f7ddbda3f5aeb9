// The API reference: every route of /api/v1/openapi.json with its fields
// (and their descriptions), its query and path parameters, and the roles it
// needs. Used by /api/v1/docs and by the console's API page.
import { h } from './ui.js';
import { t } from './i18n.js';

function resolve(doc, schema) {
  let s = schema || {};
  for (let i = 0; s.$ref && i < 8; i += 1) s = doc.components.schemas[s.$ref.split('/').pop()] || {};
  return s;
}

function typeOf(doc, s) {
  if (!s) return '';
  if (s.$ref) return s.$ref.split('/').pop().replace(/^kefu_[a-z]+_v1_/, '');
  if (s.anyOf) return s.anyOf.map((x) => typeOf(doc, x)).filter((x) => x !== 'null').join(' | ');
  if (s.oneOf) return s.oneOf.map((x) => typeOf(doc, x)).join(' | ');
  if (s.type === 'array') return `${typeOf(doc, s.items)}[]`;
  if (s.enum) return 'enum';
  return s.format ? `${s.type} (${s.format})` : s.type || 'object';
}

function fieldRows(doc, schema) {
  const s = resolve(doc, schema);
  const req = new Set(s.required || []);
  return Object.entries(s.properties || {}).map(([name, p]) => {
    const inner = resolve(doc, p.anyOf ? p.anyOf[0] : p.type === 'array' ? p.items : p);
    const desc = p.description || inner.description || '';
    return h('tr', {}, h('td', {}, h('code', {}, name)), h('td', {}, typeOf(doc, p)), h('td', {}, req.has(name) ? '✓' : ''), h('td', {}, desc));
  });
}

function fieldTable(doc, schema, caption) {
  const rows = fieldRows(doc, schema);
  if (!rows.length) return null;
  return h('table', { class: 'grid' }, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, [t('fields'), t('type'), t('required'), t('detail')].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows));
}

function operation(doc, path, method, op) {
  const roles = op['x-roles'];
  const params = (op.parameters || []).map((p) => h('tr', {}, h('td', {}, h('code', {}, p.name)), h('td', {}, p.in), h('td', {}, typeOf(doc, p.schema)), h('td', {}, p.description || (p.schema && p.schema.description) || '')));
  const body = op.requestBody && op.requestBody.content && Object.values(op.requestBody.content)[0];
  const ok = op.responses && (op.responses['200'] || op.responses['201']);
  const okSchema = ok && ok.content && Object.values(ok.content)[0] && Object.values(ok.content)[0].schema;
  const det = h('details', {}, h('summary', {}, `${t('fields')} · ${t('query')} · ${t('response')}`),
    op.description ? h('p', {}, op.description) : null,
    params.length ? h('table', { class: 'grid' }, h('caption', {}, t('query')), h('tbody', {}, params)) : null,
    body ? fieldTable(doc, body.schema, t('body')) : null,
    okSchema ? fieldTable(doc, okSchema, t('response')) : null);
  return h('div', { class: 'op', dataset: { key: `${method} ${path} ${op.summary || ''} ${op.operationId || ''}`.toLowerCase() } },
    h('div', {}, h('span', { class: `m ${method}` }, method), h('code', {}, path), ` — ${op.summary || ''}`),
    h('div', { class: 'help' }, `${t('requiredRoles')}: ${roles && roles.length ? roles.join(', ') : t('noLogin')}`), det);
}

export async function apiPage(root) {
  const doc = await (await fetch('/api/v1/openapi.json')).json();
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags || ['other'])[0];
      (byTag[tag] = byTag[tag] || []).push(operation(doc, path, method.toUpperCase(), op));
    }
  }
  const filter = h('input', { id: 'api-filter', type: 'search', placeholder: t('filterOps'), 'aria-label': t('filterOps') });
  const list = h('div', { id: 'ops' }, Object.keys(byTag).sort().map((tag) => h('section', { class: 'tag', 'aria-label': tag }, h('h2', {}, tag), ...byTag[tag])));
  filter.addEventListener('input', () => {
    const q = filter.value.toLowerCase();
    for (const el of list.querySelectorAll('.op')) el.hidden = !el.dataset.key.includes(q);
    // A service none of whose operations match is left out whole.
    for (const sec of list.querySelectorAll('section.tag')) sec.hidden = !sec.querySelector('.op:not([hidden])');
  });
  root.replaceChildren(h('h1', {}, t('apiReference')),
    h('p', {}, h('a', { href: '/api/v1/openapi.json' }, '/api/v1/openapi.json'), ' · Authorization: Bearer <accessToken> | X-API-Key · application/problem+json'),
    filter, list);
}

if (document.body.classList.contains('docs')) {
  import('./i18n.js').then((m) => m.loadLabels()).then(() => apiPage(document.getElementById('main')));
}
