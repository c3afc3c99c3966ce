// Sending infrastructure: IPs and their state machine, warm-up plans, domains with the
// DNS records to publish, blacklist checks.

import { del, get, patch, post, put } from '../api.js';
import { action, badge, copyButton, dnsBadge, facts, form, header, notice, pagedTable, section, stateLabel, table } from '../components.js';
import { barChart, lineChart } from '../chart.js';
import { h, num, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { dmarcSections } from './dmarc.js';
import { isAdmin, owned, scoped, session, tenantName } from '../session.js';

const IP_STATES = ['warming', 'active', 'resting', 'retiring', 'quarantined', 'blacklisted'];

export async function ips(_, query) {
  const create = form({
    fields: [
      { name: 'ip', label: t('ip_address'), required: true, placeholder: '203.0.113.10' },
      { name: 'hostname', label: t('hostname'), placeholder: 'mail1.example.com' },
      { name: 'pool', label: t('pool') },
      { name: 'state', label: t('state'), type: 'select', options: [['', t('default_warming')], ...IP_STATES.map((s) => [s, stateLabel(s)])] },
    ],
    submitLabel: t('add_ip'),
    submit: (values) => post('/api/v1/ips', owned(values)),
    onDone: (ip) => go(`/ips/${ip.id}`),
    compact: true,
  });
  const filter = h('select', { 'aria-label': t('state') }, h('option', { value: '' }, t('all_states')),
    IP_STATES.map((s) => h('option', { value: s, selected: query.state === s }, s)));
  filter.addEventListener('change', () => go(filter.value ? `/ips?state=${filter.value}` : '/ips'));
  return h('div', {}, header(t('ips'), filter),
    isAdmin() ? section(t('new_ip'), create) : null,
    section(null, pagedTable({
      path: '/api/v1/ips',
      params: { state: query.state },
      columns: [
        { label: t('ip_address'), value: (r) => h('code', {}, r.ip) }, { label: t('hostname'), key: 'hostname' },
        { label: t('state'), value: (r) => badge(r.state) }, { label: t('pool'), key: 'pool' },
        { label: t('blacklists'), value: (r) => badge(r.blacklist_status) },
        { label: t('tenant'), value: (r) => tenantName(r.tenant_id) },
        { label: t('since'), value: (r) => when(r.state_changed_at) },
      ],
      onRow: (r) => go(`/ips/${r.id}`),
    })));
}

export async function ip({ id }) {
  const found = await get(`/api/v1/ips/${id}`);
  const transition = form({
    fields: [
      { name: 'to', label: t('new_state'), type: 'select', options: IP_STATES.filter((s) => s !== found.state).map((s) => [s, stateLabel(s)]) },
      { name: 'reason', label: t('reason') },
    ],
    submitLabel: t('change_state'),
    submit: (values) => post(`/api/v1/ips/${id}/transition`, values),
    onDone: () => refresh(),
    compact: true,
  });
  let plan = null;
  if (found.warmup_plan_id) {
    plan = await get(`/api/v1/warmup/plans/${found.warmup_plan_id}`).catch(() => null);
    if (plan) plan.days = (await get(`/api/v1/warmup/plans/${plan.id}/days`).catch(() => ({ items: [] }))).items;
  }
  return h('div', {}, header(found.ip,
    isAdmin() ? action(t('check_blacklists'), async () => {
      const result = await get('/api/v1/blacklists/check', { ip: found.ip });
      notice(result.listed ? t('listed_on', { lists: result.lists.filter((l) => l.listed).map((l) => l.zone).join(', ') }) : t('not_listed'), result.listed ? 'error' : 'info');
      refresh();
    }) : null,
    isAdmin() ? action(t('delete'), async () => { await del(`/api/v1/ips/${id}`); go('/ips'); }, { kind: 'danger', confirmText: t('confirm_delete') }) : null),
  section(null, facts([
    [t('state'), badge(found.state)], [t('reason'), found.state_reason], [t('since'), when(found.state_changed_at)],
    [t('hostname'), found.hostname], [t('pool'), found.pool], [t('tenant'), tenantName(found.tenant_id)],
    [t('blacklists'), badge(found.blacklist_status)],
  ])),
  isAdmin() ? section(t('transition'), transition) : null,
  plan ? section(t('warmup'), warmupPlan(plan)) : null,
  section(t('history'), pagedTable({
    path: `/api/v1/ips/${id}/transitions`,
    columns: [
      { label: t('when'), value: (r) => when(r.at) }, { label: t('from'), value: (r) => badge(r.from) },
      { label: t('to'), value: (r) => badge(r.to) }, { label: t('reason'), key: 'reason' },
      { label: t('by'), value: (r) => r.actor_label || r.actor_type },
    ],
  })),
  section(t('blacklist_history'), pagedTable({
    path: '/api/v1/blacklists/history',
    params: { ip_id: id },
    columns: [
      { label: t('when'), value: (r) => when(r.checked_at) }, { label: t('zone'), key: 'zone' },
      { label: t('listed'), value: (r) => badge(r.listed ? 'listed' : 'clean') },
    ],
  })));
}

/// A plan's schedule as a chart: the quota of each day against what the IP sent.
function warmupPlan(plan) {
  const labels = plan.schedule.map((_, i) => String(i + 1));
  const days = plan.days || [];
  const sent = plan.schedule.map((_, i) => (i < days.length ? days[i].sent : null));
  return h('div', {},
    facts([[t('status'), badge(plan.status)], [t('day'), `${plan.current_day} / ${plan.total_days}`],
      [t('quota_today'), `${num(plan.sent_today)} / ${num(plan.daily_quota)}`], [t('started'), plan.start_date]]),
    lineChart(labels, [{ name: t('planned'), values: plan.schedule }, { name: t('sent'), values: sent, kind: days.length > 1 ? '' : 'points' }], { title: t('warmup') }),
    h('div', { class: 'actions' },
      plan.status === 'paused'
        ? action(t('resume'), async () => { await post(`/api/v1/warmup/plans/${plan.id}/resume`); refresh(); })
        : action(t('pause'), async () => { await post(`/api/v1/warmup/plans/${plan.id}/pause`); refresh(); })));
}

/// The plans' schedules side by side (the first six): each day's quota, per IP.
function planChart(plans) {
  const shown = plans.slice(0, 6);
  const longest = Math.max(...shown.map((p) => p.schedule.length));
  const labels = Array.from({ length: longest }, (_, i) => String(i + 1));
  return h('div', { id: 'warmup-plans-chart' },
    lineChart(labels, shown.map((p) => ({ name: p.ip || p.ip_id, values: p.schedule })), { title: t('plans') }));
}

export async function warmup() {
  const quotas = await get('/api/v1/warmup/quota', scoped({ limit: 500 }));
  const plans = await get('/api/v1/warmup/plans', { limit: 500 });
  return h('div', {}, header(t('warmup')),
    section(t('quota_today'), quotas.items.length
      ? barChart(quotas.items.map((q) => [q.ip, q.sent_today, q.daily_quota ?? undefined]), { title: t('quota_today') })
      : h('p', { class: 'muted' }, t('nothing_yet'))),
    section(t('plans'), plans.items.length ? planChart(plans.items) : null, table([
      { label: t('ip_address'), value: (r) => r.ip || r.ip_id }, { label: t('status'), value: (r) => badge(r.status) },
      { label: t('day'), value: (r) => `${r.current_day} / ${r.total_days}` },
      { label: t('quota_today'), value: (r) => `${num(r.sent_today)} / ${num(r.daily_quota)}` },
    ], plans.items, (r) => go(`/ips/${r.ip_id}`))));
}

export async function pools() {
  const list = await get('/api/v1/pools', scoped({ limit: 500 }));
  const ipsPage = await get('/api/v1/ips', { limit: 500 });
  const edit = form({
    fields: [
      { name: 'name', label: t('pool'), required: true },
      { name: 'enabled', label: t('rotation_enabled'), type: 'checkbox', value: true },
      { name: 'retire_fraction', label: t('retire_fraction'), type: 'number', step: '0.05', value: 0.25 },
      { name: 'min_active', label: t('min_active'), type: 'number', value: 1 },
      { name: 'drain_hours', label: t('drain_hours'), type: 'number', value: 24 },
      { name: 'rest_days', label: t('rest_days'), type: 'number', value: 30 },
    ],
    submitLabel: t('save'), compact: true,
    submit: ({ name, ...rotation }) => put(`/api/v1/pools/${encodeURIComponent(name || '')}`, owned({ rotation: { ...rotation, enabled: Boolean(rotation.enabled) } })),
    onDone: () => refresh(),
  });
  return h('div', {}, header(t('pools')),
    section(t('pool_rotation'), h('p', { class: 'muted' }, t('pools_help')), edit),
    section(null, table([
      { label: t('pool'), key: 'name' }, { label: t('tenant'), value: (r) => tenantName(r.tenant_id) },
      { label: t('rotation_enabled'), value: (r) => (r.rotation.enabled ? t('yes') : t('no')) },
      { label: t('retire_fraction'), value: (r) => r.rotation.retire_fraction },
      { label: t('min_active'), value: (r) => r.rotation.min_active },
      { label: t('rest_days'), value: (r) => r.rotation.rest_days },
      { label: t('ips'), value: (r) => ipsPage.items.filter((ip) => ip.pool === r.name).map((ip) => `${ip.ip} (${ip.state})`).join(', ') || '–' },
    ], list.items)));
}

export async function domains() {
  const create = form({
    fields: [
      { name: 'domain', label: t('domain'), required: true, placeholder: 'news.example.com' },
      { name: 'dkim_selector', label: t('dkim_selector') },
      { name: 'dkim_algorithm', label: t('dkim_algorithm'), type: 'select', options: [['', 'rsa-2048'], ['ed25519', 'ed25519']] },
      { name: 'dmarc_policy', label: t('dmarc_policy'), type: 'select', options: [['', 'none'], ['quarantine', 'quarantine'], ['reject', 'reject']] },
    ],
    submitLabel: t('add_domain'),
    submit: (values) => post('/api/v1/domains', owned(values)),
    onDone: (domain) => go(`/domains/${domain.id}`),
    compact: true,
  });
  const needsTenant = isAdmin() && !session.tenant;
  return h('div', {}, header(t('domains')),
    section(t('new_domain'), needsTenant ? h('p', { class: 'muted' }, t('choose_tenant_first')) : create),
    section(null, pagedTable({
      path: '/api/v1/domains',
      params: scoped(),
      columns: [
        { label: t('domain'), key: 'domain' }, { label: t('tenant'), value: (r) => tenantName(r.tenant_id) },
        { label: t('dns'), value: (r) => dnsBadge(r.dns_ok) },
        { label: t('last_check'), value: (r) => when(r.last_checked_at) },
        { label: t('dkim_selector'), key: 'dkim_selector' },
      ],
      onRow: (r) => go(`/domains/${r.id}`),
    })));
}

export async function domain({ id }) {
  const found = await get(`/api/v1/domains/${id}`);
  const records = await get(`/api/v1/domains/${id}/dns-records`, { limit: 100 });
  const dmarc = await dmarcSections(id);
  return h('div', {}, header(found.domain,
    action(t('validate_now'), async () => {
      const check = await post(`/api/v1/domains/${id}/validate`);
      notice(check.ok ? t('dns_ok') : t('dns_problems'), check.ok ? 'info' : 'error');
      refresh();
    }),
    action(t('rotate_dkim'), async () => { await post(`/api/v1/domains/${id}/dkim/rotate`, {}); refresh(); }, { confirmText: t('confirm_rotate_dkim') }),
    action(t('delete'), async () => { await del(`/api/v1/domains/${id}`); go('/domains'); }, { kind: 'danger', confirmText: t('confirm_delete') })),
  section(null, facts([
    [t('dns'), dnsBadge(found.dns_ok)],
    [t('last_check'), when(found.last_checked_at)], [t('dmarc_policy'), found.dmarc_policy],
    [t('tenant'), tenantName(found.tenant_id)],
  ])),
  section(t('dns_records'), h('p', { class: 'muted' }, t('dns_records_help')),
    h('div', { id: 'dns-records' }, records.items.map((r) => h('div', { class: 'record' },
      h('div', {}, h('strong', {}, `${r.type} · ${r.purpose}`), h('div', {}, h('code', { class: 'record-name' }, r.name)),
        h('code', { class: 'record-value' }, r.value)),
      h('div', { class: 'actions' }, copyButton(r.name, t('copy_name')), copyButton(r.value, t('copy_value'))))))),
  section(t('dkim_keys'), table([
    { label: t('dkim_selector'), key: 'selector' }, { label: t('dkim_algorithm'), key: 'algorithm' },
    { label: t('status'), value: (r) => badge(r.status) }, { label: t('created'), value: (r) => when(r.created_at) },
    { label: '', value: (r) => (r.status === 'retired' || r.selector === found.dkim_selector ? null
      : action(t('retire'), async () => { await del(`/api/v1/domains/${id}/dkim/${encodeURIComponent(r.selector)}`); refresh(); }, { kind: 'small danger', confirmText: t('confirm_retire') })) },
  ], found.dkim_keys)),
  section(t('dmarc_policy'), form({
    fields: [{ name: 'dmarc_policy', label: t('dmarc_policy'), type: 'select', value: found.dmarc_policy,
      options: [['none', 'none'], ['quarantine', 'quarantine'], ['reject', 'reject']] }],
    submit: (values) => patch(`/api/v1/domains/${id}`, values),
    onDone: () => refresh(),
    compact: true,
  })),
  ...dmarc,
  section(t('check_history'), pagedTable({
    path: `/api/v1/domains/${id}/checks`,
    columns: [
      { label: t('when'), value: (r) => when(r.checked_at) }, { label: t('result'), value: (r) => badge(r.ok ? 'ok' : 'fail') },
      { label: t('details'), value: (r) => checkSummary(r.results) },
    ],
  })));
}

function checkSummary(results) {
  return h('ul', { class: 'plain' }, Object.entries(results || {}).map(([name, value]) => {
    const status = value && typeof value === 'object' ? (value.status || (value.ok === true ? 'ok' : value.ok === false ? 'fail' : '')) : value;
    return h('li', {}, `${name}: `, badge(status), value && value.detail ? ` ${value.detail}` : '');
  }));
}

export async function blacklists() {
  const ipsPage = await get('/api/v1/ips', { limit: 500 });
  const checker = form({
    fields: [{ name: 'ip', label: t('ip_address'), type: 'select', options: ipsPage.items.map((r) => [r.ip, r.ip]) }],
    submitLabel: t('check_now'),
    submit: (values) => get('/api/v1/blacklists/check', values),
    onDone: (result) => {
      notice(result.listed ? t('listed_on', { lists: result.lists.filter((l) => l.listed).map((l) => l.zone).join(', ') }) : t('not_listed'), result.listed ? 'error' : 'info');
      refresh();
    },
    compact: true,
  });
  return h('div', {}, header(t('blacklists')),
    isAdmin() && ipsPage.items.length ? section(t('check_now'), checker) : null,
    section(t('ips'), table([
      { label: t('ip_address'), value: (r) => h('code', {}, r.ip) }, { label: t('blacklists'), value: (r) => badge(r.blacklist_status) },
      { label: t('state'), value: (r) => badge(r.state) },
    ], ipsPage.items, (r) => go(`/ips/${r.id}`))));
}
