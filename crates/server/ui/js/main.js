// The admin UI's shell: login, the header (tenant, language, account), the menu, and a
// hash router that renders one page at a time.

import { onUnauthorized } from './api.js';
import { errorText, notice } from './components.js';
import { h, replace } from './dom.js';
import { LANGS, init as initI18n, lang, setLang, t } from './i18n.js';
import { routes, menu } from './routes.js';
import { chooseTenant, isAdmin, login, logout, resume, session, tenantName } from './session.js';

const app = document.getElementById('app');

function match(path) {
  for (const route of routes) {
    const names = [];
    const pattern = new RegExp(`^${route.path.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; })}$`);
    const found = pattern.exec(path);
    if (found) return { route, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(found[i + 1])])) };
  }
  return null;
}

function current() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search] = hash.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(search || '')) };
}

function loginPage() {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const email = h('input', { id: 'login-email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('login'));
  const form = h('form', { class: 'login card', id: 'login-form' },
    h('h1', {}, 'Email-Engine'), error,
    h('div', { class: 'field' }, h('label', { for: 'login-email' }, t('email')), email),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, t('password')), password),
    h('div', { class: 'form-actions' }, submit), languageSwitch());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await login(email.value.trim(), password.value);
      render();
    } catch (e) {
      error.hidden = false;
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  });
  replace(app, h('main', { class: 'login-wrap' }, form));
  email.focus();
}

function languageSwitch() {
  return h('div', { class: 'langs', role: 'group', 'aria-label': t('language') }, LANGS.map((code) =>
    h('button', { type: 'button', class: code === lang() ? 'small active' : 'small', 'aria-pressed': code === lang() ? 'true' : 'false',
      onclick: async () => { await setLang(code); render(); } }, code.toUpperCase())));
}

function tenantSwitch() {
  if (!isAdmin()) return h('span', { class: 'tenant-name' }, tenantName(session.me.tenant_id));
  const select = h('select', { id: 'tenant-switch', 'aria-label': t('tenant') },
    h('option', { value: '' }, t('all_tenants')),
    session.tenants.map((tn) => h('option', { value: tn.id, selected: tn.id === session.tenant }, tn.name)));
  select.addEventListener('change', () => { chooseTenant(select.value); render(); });
  return select;
}

function nav(path) {
  return h('nav', { class: 'menu', 'aria-label': t('menu') }, menu.filter((group) => !group.admin || isAdmin()).map((group) =>
    h('div', { class: 'menu-group' }, h('h3', {}, t(group.label)),
      h('ul', {}, group.items.filter((item) => !item.admin || isAdmin()).map((item) =>
        h('li', {}, h('a', { href: `#${item.path}`, 'aria-current': (path === item.path || (item.path !== '/' && path.startsWith(`${item.path}/`))) ? 'page' : null }, t(item.label))))))));
}

let renderCount = 0;

async function render() {
  const mine = ++renderCount;
  if (!session.me) {
    loginPage();
    return;
  }
  const { path, query } = current();
  const found = match(path);
  const main = h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'muted' }, t('loading')));
  const menuToggle = h('button', { type: 'button', class: 'menu-toggle small', 'aria-label': t('menu'),
    onclick: () => document.body.classList.toggle('menu-open') }, '☰');
  replace(app,
    h('header', { class: 'top' }, menuToggle, h('a', { class: 'brand', href: '#/' }, 'Email-Engine'), tenantSwitch(),
      h('div', { class: 'spacer' }), languageSwitch(),
      h('span', { class: 'who' }, session.me.label, ' · ', t(`role_${session.me.role}`)),
      h('button', { type: 'button', class: 'small secondary', id: 'logout', onclick: async () => { await logout(); render(); } }, t('logout'))),
    h('div', { class: 'layout' }, nav(path), main));
  document.body.classList.remove('menu-open');
  if (!found) {
    replace(main, h('h1', {}, t('not_found')));
    return;
  }
  document.title = `${t(found.route.title)} · Email-Engine`;
  try {
    const page = await found.route.page(found.params, query);
    if (mine === renderCount) replace(main, page);
  } catch (error) {
    if (mine === renderCount) replace(main, h('h1', {}, t(found.route.title)), h('p', { class: 'form-error' }, errorText(error)));
  }
}

onUnauthorized(() => {
  if (session.me) {
    session.me = null;
    notice(t('session_ended'), 'error');
    render();
  }
});

window.addEventListener('hashchange', render);
window.addEventListener('ee-refresh', render);

(async () => {
  await initI18n();
  await resume();
  render();
})();

