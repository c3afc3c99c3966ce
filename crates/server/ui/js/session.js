// Who is logged in, and which tenant the pages show. An admin sees every tenant and
// picks one (or all, where a page allows); a user sees only its own.

import { api, get, setCsrf } from './api.js';

export const session = {
  me: null,
  tenants: [],
  tenant: null,
};

export function isAdmin() {
  return Boolean(session.me && session.me.role === 'admin');
}

/// The tenant the pages act on: a user's own, or the admin's choice (null: all).
export function tenantId() {
  return isAdmin() ? session.tenant : session.me && session.me.tenant_id;
}

export function tenantName(id) {
  const tenant = session.tenants.find((t) => t.id === id);
  return tenant ? tenant.name : id || '';
}

/// Query parameters scoped to the chosen tenant (admins name it; users need not).
export function scoped(params = {}) {
  return isAdmin() && session.tenant ? { tenant_id: session.tenant, ...params } : params;
}

/// A request body for a new tenant-owned resource, with the admin's chosen tenant.
export function owned(body) {
  return isAdmin() && session.tenant ? { tenant_id: session.tenant, ...body } : body;
}

export function chooseTenant(id) {
  session.tenant = id || null;
  if (id) localStorage.setItem('ee.tenant', id);
  else localStorage.removeItem('ee.tenant');
}

async function loadTenants() {
  if (isAdmin()) {
    const page = await get('/api/v1/tenants', { limit: 500 });
    session.tenants = page.items;
    const saved = localStorage.getItem('ee.tenant');
    session.tenant = session.tenants.some((t) => t.id === saved) ? saved : null;
  } else if (session.me.tenant_id) {
    session.tenants = [await get(`/api/v1/tenants/${session.me.tenant_id}`)];
    session.tenant = session.me.tenant_id;
  }
}

function started(answer) {
  session.me = answer.me;
  setCsrf(answer.csrf_token);
}

/// The session this browser already has, if any.
export async function resume() {
  try {
    started(await api('GET', '/api/v1/auth/session'));
  } catch {
    return false;
  }
  await loadTenants();
  return true;
}

export async function login(email, password) {
  started(await api('POST', '/api/v1/auth/session', { body: { email, password } }));
  await loadTenants();
}

export async function logout() {
  try {
    await api('DELETE', '/api/v1/auth/session');
  } finally {
    session.me = null;
    setCsrf(null);
  }
}

export async function refreshTenants() {
  await loadTenants();
}
