// Operations: scheduled jobs and dead letters, the audit log, and settings (delivery
// mode, relays, MailWizz instances, the PowerMTA configuration and its deploy).

import { api, del, get, post, put } from '../api.js';
import { action, badge, facts, form, header, notice, pagedTable, section, table, tabs } from '../components.js';
import { h, num, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { isAdmin, owned, scoped, tenantId, tenantName } from '../session.js';

export async function jobs(_, query) {
  const scheduled = await get('/api/v1/jobs', { limit: 100 });
  return h('div', {}, header(t('jobs')),
    section(t('scheduled_jobs'), table([
      { label: t('name'), value: (r) => h('div', {}, h('strong', {}, r.name), h('div', { class: 'muted' }, r.description)) },
      { label: t('schedule'), key: 'schedule' },
      { label: t('last_run'), value: (r) => (r.last_run ? h('span', {}, badge(r.last_run.state), ' ', when(r.last_run.finished_at || r.last_run.run_at)) : '–') },
      { label: t('next_run'), value: (r) => when(r.next_run) },
      { label: '', value: (r) => action(t('run_now'), async () => { await post(`/api/v1/jobs/${r.name}/run`); notice(t('job_queued', { name: r.name })); refresh(); }, { kind: 'small' }) },
    ], scheduled.items)),
    section(t('job_queue'), h('div', { class: 'actions' }, ['', 'queued', 'running', 'succeeded', 'failed', 'dead'].map((s) =>
      h('a', { href: s ? `#/jobs?state=${s}` : '#/jobs', 'aria-current': (query.state || '') === s ? 'page' : null }, s ? s : t('all_states')))),
    pagedTable({
      path: '/api/v1/jobs/queue',
      params: { state: query.state },
      columns: [
        { label: t('kind'), key: 'kind' }, { label: t('state'), value: (r) => badge(r.state) },
        { label: t('attempts'), value: (r) => `${r.attempts} / ${r.max_attempts}` }, { label: t('run_at'), value: (r) => when(r.run_at) },
        { label: t('last_error'), key: 'last_error' },
        { label: '', value: (r) => (r.state === 'dead' || r.state === 'failed' ? action(t('retry'), async () => { await post(`/api/v1/jobs/queue/${r.id}/retry`); refresh(); }, { kind: 'small' }) : null) },
      ],
    })));
}

export async function audit(_, query) {
  const filters = form({
    fields: [
      { name: 'actor', label: t('actor'), value: query.actor }, { name: 'action', label: t('action'), value: query.action },
      { name: 'resource_type', label: t('resource_type'), value: query.resource_type }, { name: 'resource_id', label: t('resource_id'), value: query.resource_id },
      { name: 'from', label: t('from'), type: 'date', value: query.from }, { name: 'to', label: t('to'), type: 'date', value: query.to },
    ],
    submitLabel: t('search'), compact: true,
    submit: async (values) => go(`/audit?${new URLSearchParams(values)}`),
  });
  const params = { ...query };
  if (params.from) params.from = new Date(`${params.from}T00:00:00`).toISOString();
  if (params.to) params.to = new Date(`${params.to}T23:59:59`).toISOString();
  return h('div', {}, header(t('audit')), section(null, filters),
    section(null, pagedTable({
      path: '/api/v1/audit/logs',
      params: scoped(params),
      columns: [
        { label: t('when'), value: (r) => when(r.created_at) }, { label: t('actor'), value: (r) => r.actor_label || r.actor_type },
        { label: t('action'), key: 'action' }, { label: t('resource_type'), key: 'resource_type' },
        { label: t('resource_id'), value: (r) => (r.resource_id ? h('code', {}, r.resource_id) : '–') },
        { label: t('tenant'), value: (r) => tenantName(r.tenant_id) }, { label: 'IP', key: 'ip_address' },
        { label: t('changes'), value: (r) => (r.before || r.after ? h('details', {}, h('summary', {}, t('show')),
          h('pre', { class: 'code' }, JSON.stringify({ before: r.before, after: r.after }, null, 2))) : '–') },
      ],
    })));
}

function deliverySettings(tenant) {
  const holder = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  get(`/api/v1/tenants/${tenant}/delivery`).then((d) => {
    const f = form({
      fields: [
        { name: 'mode', label: t('delivery_mode'), type: 'select', value: d.mode, options: [['direct', t('mode_direct')], ['relay', t('mode_relay')], ['mailwizz', t('mode_mailwizz')]] },
        { name: 'relay', label: t('relay'), value: d.relay },
        { name: 'relays', label: t('more_relays'), value: (d.relays || []).join(', '), placeholder: 'pmta-2, smarthost' },
        { name: 'relay_order', label: t('relay_order'), type: 'select', value: d.relay_order, options: [['listed', t('relay_order_listed')], ['weighted', t('relay_order_weighted')]] },
        { name: 'mailwizz', label: t('mailwizz_instance'), value: d.mailwizz },
        { name: 'default_from_email', label: t('from_email'), value: d.default_from_email, type: 'email' },
        { name: 'default_from_name', label: t('from_name'), value: d.default_from_name },
        { name: 'bounce_domain', label: t('bounce_domain'), value: d.bounce_domain },
        { name: 'time_zone', label: t('time_zone'), value: d.time_zone, placeholder: 'Europe/Paris' },
        { name: 'track_opens', label: t('track_opens'), type: 'checkbox', value: d.track_opens },
        { name: 'track_clicks', label: t('track_clicks'), type: 'checkbox', value: d.track_clicks },
        { name: 'campaign_auto_pause', label: t('auto_pause'), type: 'json', rows: 3, value: d.campaign_auto_pause },
      ],
      submit: (values) => put(`/api/v1/tenants/${tenant}/delivery`, {
        ...d, ...values, relays: (values.relays || '').split(',').map((s) => s.trim()).filter(Boolean),
      }),
      onDone: () => notice(t('saved')),
    });
    holder.replaceChildren(f);
  }).catch((e) => holder.replaceChildren(h('p', { class: 'form-error' }, e.message)));
  return holder;
}

function relays() {
  const list = pagedTable({
    path: '/api/v1/relays',
    params: scoped(),
    columns: [
      { label: t('name'), key: 'name' }, { label: t('host'), value: (r) => `${r.host}:${r.port}` }, { label: 'TLS', key: 'tls' },
      { label: t('username'), key: 'username' }, { label: t('password'), value: (r) => (r.has_password ? t('sealed') : '–') },
      { label: t('weight'), key: 'weight' }, { label: t('max_per_hour'), value: (r) => num(r.max_per_hour) },
      { label: t('max_connections'), value: (r) => num(r.max_connections) },
      { label: '', value: (r) => action(t('delete'), async () => { await del(`/api/v1/relays/${r.id}`); refresh(); }, { kind: 'small danger', confirmText: t('confirm_delete') }) },
    ],
  });
  const create = form({
    fields: [
      { name: 'name', label: t('name'), required: true }, { name: 'host', label: t('host'), required: true },
      { name: 'port', label: t('port'), type: 'number', value: 587 },
      { name: 'tls', label: 'TLS', type: 'select', options: [['starttls', 'STARTTLS'], ['tls', 'TLS'], ['none', t('none')]] },
      { name: 'username', label: t('username') }, { name: 'password', label: t('password'), type: 'password' },
      { name: 'weight', label: t('weight'), type: 'number', value: 1 },
      { name: 'max_per_hour', label: t('max_per_hour'), type: 'number' },
      { name: 'max_connections', label: t('max_connections'), type: 'number' },
    ],
    submitLabel: t('add_relay'), compact: true,
    submit: (values) => post('/api/v1/relays', owned(values)),
    onDone: () => refresh(),
  });
  return h('div', {}, list, h('h3', {}, t('add_relay')), create);
}

function mailwizz() {
  const list = pagedTable({
    path: '/api/v1/mailwizz/instances',
    params: scoped(),
    columns: [
      { label: t('name'), key: 'name' }, { label: 'API', key: 'api_url' }, { label: t('primary'), value: (r) => (r.is_primary ? t('yes') : t('no')) },
      { label: t('api_key'), value: (r) => (r.has_key ? t('sealed') : '–') },
      { label: '', value: (r) => action(t('delete'), async () => { await del(`/api/v1/mailwizz/instances/${r.id}`); refresh(); }, { kind: 'small danger', confirmText: t('confirm_delete') }) },
    ],
  });
  const create = form({
    fields: [
      { name: 'name', label: t('name'), required: true }, { name: 'api_url', label: 'API URL', required: true, placeholder: 'https://mw.example.com/api' },
      { name: 'api_key', label: t('api_key'), type: 'password', required: true }, { name: 'default_list_uid', label: t('default_list') },
      { name: 'is_primary', label: t('primary'), type: 'checkbox' },
    ],
    submitLabel: t('add_instance'), compact: true,
    submit: (values) => post('/api/v1/mailwizz/instances', owned(values)),
    onDone: () => refresh(),
  });
  return h('div', {}, list, h('h3', {}, t('add_instance')), create);
}

function powermta() {
  const config = h('pre', { class: 'code', id: 'pmta-config' }, t('loading'));
  api('GET', '/api/v1/powermta/config').then((text) => { config.textContent = text; }).catch((e) => { config.textContent = e.message; });
  const report = h('div');
  const deploy = action(t('deploy'), async () => {
    const r = await post('/api/v1/powermta/deploy');
    report.replaceChildren(facts([[t('target'), r.target], [t('result'), badge(r.outcome)], [t('reason'), r.reason], [t('backup'), r.backup]]),
      table([{ label: t('step'), key: 'name' }, { label: t('result'), value: (s) => badge(s.ok ? 'ok' : 'fail') }, { label: t('details'), key: 'detail' }], r.steps),
      r.diff ? h('pre', { class: 'code' }, r.diff) : null);
  }, { kind: 'primary', confirmText: t('confirm_deploy') });
  return h('div', {}, h('div', { class: 'actions' }, deploy), report, h('h3', {}, t('config_preview')), config);
}

export async function settings() {
  const tenant = tenantId();
  const panes = [];
  if (tenant) {
    panes.push([t('delivery'), () => deliverySettings(tenant)], [t('relays'), relays], [t('mailwizz'), mailwizz]);
  }
  if (isAdmin()) panes.push(['PowerMTA', powermta]);
  return h('div', {}, header(tenant ? `${t('settings')} · ${tenantName(tenant)}` : t('settings')),
    tenant ? null : section(null, h('p', { class: 'muted' }, t('choose_tenant_for_settings'))),
    panes.length ? tabs(panes) : null);
}


