// The console's shell: who is logged in, the navigation their roles reach,
// the hash router, logging in and changing a password.
import { t, setLang, getLang, loadLabels } from './i18n.js';
import { api, h, form, notify, ApiError, loadLists } from './ui.js';
import { PAGES as WORK } from './pages.js';
import { PAGES as PEOPLE } from './people.js';
import { PAGES as ADMIN } from './admin.js';
import { apiPage } from './docs.js';

const PAGES = { ...WORK, ...PEOPLE, ...ADMIN, api: { nav: 'navApi', roles: null, render: apiPage } };
// The navigation, in order; each page says which roles see it (null: everyone).
const NAV = ['mine', 'queue', 'board', 'new', 'customers', 'followups', 'complaints', 'training', 'performance', 'settings', 'audit', 'api', 'password'];

export const session = { me: null };
let stopPage = null;

function main() { return document.getElementById('main'); }

function mayOpen(page) {
  if (!page.roles) return true;
  const roles = session.me ? session.me.roles : [];
  return page.roles.some((r) => roles.includes(r));
}

function header() {
  const top = document.getElementById('top');
  top.replaceChildren();
  if (!session.me) { top.hidden = true; return; }
  top.hidden = false;
  const current = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'mine';
  const nav = h('nav', { 'aria-label': t('app') },
    NAV.filter((k) => PAGES[k] && mayOpen(PAGES[k])).map((k) =>
      h('a', { href: `#/${k}`, 'aria-current': current === k ? 'page' : null, id: `nav-${k}` }, t(PAGES[k].nav))));
  const langSel = h('select', { id: 'lang', 'aria-label': t('lang') },
    h('option', { value: 'zh', selected: getLang() === 'zh' }, '中文'),
    h('option', { value: 'en', selected: getLang() === 'en' }, 'English'));
  langSel.addEventListener('change', () => { setLang(langSel.value); route(); });
  const me = session.me;
  top.append(
    h('span', { class: 'brand' }, t('app')),
    nav,
    h('div', { class: 'who' },
      h('span', { class: 'zone', id: 'zone' }, `${t('zone')} (UTC+8)`),
      h('span', { id: 'whoami' }, me.displayName ? `${me.displayName}（${me.staffId}）` : me.staffId),
      h('label', { for: 'lang' }, t('lang')), langSel,
      h('button', { type: 'button', id: 'logout', onclick: logout }, t('logout'))));
}

async function logout() {
  try { await api('DELETE', '/console/session', undefined, { noRefresh: true }); } catch (_) { /* gone already */ }
  session.me = null;
  location.hash = '#/login';
  route();
}

function loginPage(root, _params, message) {
  header();
  const box = h('section', { class: 'card login', 'aria-labelledby': 'login-title' }, h('h1', { id: 'login-title' }, t('loginTitle')));
  if (message) box.append(h('p', { role: 'status' }, message));
  const f = form([
    { name: 'username', label: t('username'), required: true, id: 'login-username', autocomplete: 'username' },
    { name: 'password', label: t('password'), type: 'password', required: true, id: 'login-password' },
  ], t('login'), async (v) => {
    try {
      await api('POST', '/console/session', { username: v.username, password: v.password }, { noRefresh: true });
    } catch (e) {
      if (e instanceof ApiError && e.problem.type === 'urn:kefu:password-change-required') {
        firstPassword(root, v.username, v.password);
        return;
      }
      throw e;
    }
    await whoAmI();
    location.hash = '#/mine';
    route();
  });
  box.append(f);
  box.append(h('p', { class: 'help' }, h('label', { for: 'lang-login' }, `${t('lang')}: `),
    (() => {
      const s = h('select', { id: 'lang-login' }, h('option', { value: 'zh', selected: getLang() === 'zh' }, '中文'), h('option', { value: 'en', selected: getLang() === 'en' }, 'English'));
      s.addEventListener('change', () => { setLang(s.value); loginPage(root, _params, message); });
      return s;
    })()));
  root.replaceChildren(box);
  document.getElementById('login-username').focus();
}

/** The first login with a password someone else chose: set one's own first. */
function firstPassword(root, username, current) {
  const box = h('section', { class: 'card login', 'aria-labelledby': 'pw-title' },
    h('h1', { id: 'pw-title' }, t('changePassword')), h('p', { role: 'status' }, t('mustChange')));
  box.append(form([
    { name: 'newPassword', label: t('newPassword'), type: 'password', required: true, id: 'new-password', autocomplete: 'new-password' },
    { name: 'newPassword2', label: t('newPassword2'), type: 'password', required: true, id: 'new-password-2', autocomplete: 'new-password' },
  ], t('changePassword'), async (v) => {
    if (v.newPassword !== v.newPassword2) throw new Error(t('mismatch'));
    await api('POST', '/api/v1/auth/password', { username, currentPassword: current, newPassword: v.newPassword }, { noRefresh: true });
    await api('POST', '/console/session', { username, password: v.newPassword }, { noRefresh: true });
    await whoAmI();
    notify(t('saved'));
    location.hash = '#/mine';
    route();
  }));
  root.replaceChildren(box);
  document.getElementById('new-password').focus();
}

function passwordPage(root) {
  root.replaceChildren(h('h1', {}, t('changePassword')), h('section', { class: 'card' }, form([
    { name: 'currentPassword', label: t('currentPassword'), type: 'password', required: true },
    { name: 'newPassword', label: t('newPassword'), type: 'password', required: true, autocomplete: 'new-password' },
    { name: 'newPassword2', label: t('newPassword2'), type: 'password', required: true, autocomplete: 'new-password' },
  ], t('changePassword'), async (v) => {
    if (v.newPassword !== v.newPassword2) throw new Error(t('mismatch'));
    await api('POST', '/api/v1/auth/password', { currentPassword: v.currentPassword, newPassword: v.newPassword });
    session.me = null;
    loginPage(root, {}, t('passwordChanged'));
  })));
}

async function whoAmI() {
  try {
    session.me = await api('GET', '/api/v1/me');
  } catch (e) {
    session.me = null;
    if (!(e instanceof ApiError && e.status === 401)) throw e;
  }
  return session.me;
}

export async function route() {
  if (stopPage) { try { stopPage(); } catch (_) { /* already stopped */ } stopPage = null; }
  const root = main();
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query] = hash.split('?');
  const [name, ...rest] = path.split('/');
  if (!session.me || name === 'login') {
    if (name !== 'login' && (await whoAmI())) return route();
    loginPage(root, {});
    return;
  }
  header();
  loadLists();
  if (name === 'password') { passwordPage(root); return; }
  // The first page of the navigation the person's roles open, by default.
  const key = name || NAV.find((k) => PAGES[k] && mayOpen(PAGES[k])) || 'api';
  const page = PAGES[key];
  // A record's id from the address is one plain word (no '/', '..', '#'):
  // it goes into API paths.
  const idOk = rest.length <= 1 && /^[A-Za-z0-9_-]*$/.test(rest[0] || '');
  if (!page || !mayOpen(page) || !idOk) {
    root.replaceChildren(h('p', { class: 'empty', role: 'alert' }, page && !mayOpen(page) ? t('noAccess') : t('nothing')));
    return;
  }
  // Each visit renders into its own element: a page still loading when
  // the person moves on writes into a view no longer shown.
  const view = h('div', { class: 'view' }, h('p', { class: 'loading' }, t('loading')));
  root.replaceChildren(view);
  try {
    const stop = await page.render(view, { id: rest.join('/'), query: new URLSearchParams(query || ''), me: session.me });
    if (typeof stop === 'function') {
      if (view.isConnected) stopPage = stop;
      else stop();
    }
  } catch (e) {
    view.replaceChildren(h('h1', {}, t(page.nav)), h('p', { class: 'form-error', role: 'alert' }, e.message));
  }
  document.title = `${t(page.nav)} · ${t('app')}`;
}

window.addEventListener('hashchange', route);
window.addEventListener('kefu:logged-out', () => { if (session.me) { session.me = null; route(); } });
setLang(getLang());
loadLabels().then(route);
