// Tenants, users and API keys.

import { del, get, patch, post } from '../api.js';
import { action, badge, copyButton, dialog, facts, form, header, pagedTable, section } from '../components.js';
import { h, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { isAdmin, owned, refreshTenants, scoped, session, tenantName } from '../session.js';

export async function tenants() {
  const create = form({
    fields: [
      { name: 'name', label: t('name'), required: true },
      { name: 'slug', label: t('slug'), required: true, help: t('slug_help') },
    ],
    submitLabel: t('create_tenant'),
    submit: (values) => post('/api/v1/tenants', values),
    onDone: async (tenant) => { await refreshTenants(); go(`/tenants/${tenant.id}`); },
    compact: true,
  });
  return h('div', {}, header(t('tenants')),
    section(t('new_tenant'), create),
    section(null, pagedTable({
      path: '/api/v1/tenants',
      columns: [
        { label: t('name'), key: 'name' }, { label: t('slug'), key: 'slug' },
        { label: t('status'), value: (r) => badge(r.is_active ? 'active' : 'disabled') },
        { label: t('created'), value: (r) => when(r.created_at) },
      ],
      onRow: (r) => go(`/tenants/${r.id}`),
    })));
}

export async function tenant({ id }) {
  const tn = await get(`/api/v1/tenants/${id}`);
  const edit = form({
    fields: [
      { name: 'name', label: t('name'), value: tn.name, required: true },
      { name: 'slug', label: t('slug'), value: tn.slug, required: true },
      { name: 'is_active', label: t('active'), type: 'checkbox', value: tn.is_active },
    ],
    submit: (values) => patch(`/api/v1/tenants/${id}`, { ...values, is_active: Boolean(values.is_active) }),
    onDone: async () => { await refreshTenants(); refresh(); },
  });
  return h('div', {}, header(tn.name,
    action(t('delete'), async () => { await del(`/api/v1/tenants/${id}`); await refreshTenants(); go('/tenants'); },
      { kind: 'danger', confirmText: t('confirm_delete_tenant') })),
  section(null, facts([[t('id'), h('code', {}, tn.id)], [t('created'), when(tn.created_at)], [t('updated'), when(tn.updated_at)]])),
  section(t('edit'), edit));
}

export async function users() {
  const tenantOptions = [['', t('no_tenant_admin')], ...session.tenants.map((tn) => [tn.id, tn.name])];
  const create = form({
    fields: [
      { name: 'email', label: t('email'), type: 'email', required: true },
      { name: 'password', label: t('password'), type: 'password', required: true, help: t('password_help') },
      { name: 'role', label: t('role'), type: 'select', options: [['user', t('role_user')], ['admin', t('role_admin')]], value: 'user' },
      { name: 'tenant_id', label: t('tenant'), type: 'select', options: tenantOptions, value: session.tenant || '' },
    ],
    submitLabel: t('create_user'),
    submit: (values) => post('/api/v1/users', values),
    onDone: () => refresh(),
    compact: true,
  });
  return h('div', {}, header(t('users')), section(t('new_user'), create),
    section(null, pagedTable({
      path: '/api/v1/users',
      params: scoped(),
      columns: [
        { label: t('email'), key: 'email' }, { label: t('role'), value: (r) => t(`role_${r.role}`) },
        { label: t('tenant'), value: (r) => (r.tenant_id ? tenantName(r.tenant_id) : '–') },
        { label: t('status'), value: (r) => badge(r.is_active ? 'active' : 'disabled') },
        { label: '', value: (r) => h('div', { class: 'actions' },
          action(r.is_active ? t('disable') : t('enable'), async () => { await patch(`/api/v1/users/${r.id}`, { is_active: !r.is_active }); refresh(); }, { kind: 'small' }),
          r.id === session.me.id ? null : action(t('delete'), async () => { await del(`/api/v1/users/${r.id}`); refresh(); }, { kind: 'small danger', confirmText: t('confirm_delete') })) },
      ],
    })));
}

/// A new key's secret, shown once.
function showSecret(key) {
  dialog(t('key_created'), h('div', {},
    h('p', {}, t('key_once')),
    h('div', { class: 'secret' }, h('code', { id: 'new-key' }, key.key), copyButton(key.key))));
}

export async function apiKeys() {
  const fields = [
    { name: 'name', label: t('name'), required: true },
    { name: 'expires_at', label: t('expires_at'), type: 'datetime-local' },
  ];
  const create = form({
    fields,
    submitLabel: t('create_key'),
    submit: (values) => post('/api/v1/api-keys', owned({
      ...values,
      expires_at: values.expires_at ? new Date(values.expires_at).toISOString() : undefined,
    })),
    onDone: (key) => { showSecret(key); refresh(); },
    compact: true,
  });
  const needsTenant = isAdmin() && !session.tenant;
  return h('div', {}, header(t('api_keys')),
    section(t('new_key'), needsTenant ? h('p', { class: 'muted' }, t('choose_tenant_first')) : create),
    section(null, pagedTable({
      path: '/api/v1/api-keys',
      params: scoped(),
      columns: [
        { label: t('name'), key: 'name' }, { label: t('prefix'), value: (r) => h('code', {}, r.key_prefix) },
        { label: t('tenant'), value: (r) => tenantName(r.tenant_id) },
        { label: t('status'), value: (r) => badge(r.status) },
        { label: t('last_used'), value: (r) => when(r.last_used_at) },
        { label: t('expires_at'), value: (r) => when(r.expires_at) },
        { label: '', value: (r) => (r.status === 'revoked' ? null : h('div', { class: 'actions' },
          action(t('rotate'), async () => { showSecret(await post(`/api/v1/api-keys/${r.id}/rotate`, {})); refresh(); }, { kind: 'small' }),
          action(t('revoke'), async () => { await del(`/api/v1/api-keys/${r.id}`); refresh(); }, { kind: 'small danger', confirmText: t('confirm_revoke') }))) },
      ],
    })));
}
