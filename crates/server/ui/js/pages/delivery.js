// What became of the mail: messages by recipient with their events, bounces and
// complaints with class and category, the forwarding outbox, reports, compliance.

import { get, post } from '../api.js';
import { action, badge, chooseTenantFirst, details, facts, form, header, notice, pagedTable, replyText, section, stateLabel, table } from '../components.js';
import { barChart } from '../chart.js';
import { h, num, pct, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { scoped, tenantId } from '../session.js';

const MESSAGE_STATES = ['queued', 'sending', 'sent', 'deferred', 'bounced', 'failed', 'suppressed', 'expired'];

function searchForm(fields, path) {
  return form({ fields, submitLabel: t('search'), compact: true,
    submit: async (values) => go(`${path}?${new URLSearchParams(values)}`) });
}

export async function messages(_, query) {
  return h('div', {}, header(t('messages'),
    action(t('retry_deferred'), async () => { const r = await post('/api/v2/messages/retry', scoped({ state: 'deferred' })); notice(t('retried', { count: r.retried ?? 0 })); refresh(); })),
  section(null, searchForm([
    { name: 'to', label: t('recipient'), value: query.to, type: 'email' },
    { name: 'state', label: t('state'), type: 'select', value: query.state, options: [['', t('any')], ...MESSAGE_STATES.map((s) => [s, stateLabel(s)])] },
    { name: 'campaign_id', label: t('campaign'), value: query.campaign_id },
  ], '/messages')),
  section(null, pagedTable({
    path: '/api/v2/messages',
    params: scoped(query),
    columns: [
      { label: t('recipient'), key: 'to' }, { label: t('subject'), key: 'subject' },
      { label: t('state'), value: (r) => badge(r.state) }, { label: t('last_reply'), value: (r) => (replyText(r.last_code, r.last_reply) ?? r.state_reason) },
      { label: t('attempts'), key: 'attempts' }, { label: t('queued_at'), value: (r) => when(r.queued_at) },
    ],
    onRow: (r) => go(`/messages/${r.id}`),
  })));
}

export async function message({ id }) {
  const m = await get(`/api/v2/messages/${id}`);
  const hits = await get(`/api/v2/messages/${id}/hits`).catch(() => ({ items: [] }));
  return h('div', {}, header(`${m.to} · ${m.subject}`,
    ['deferred', 'failed'].includes(m.state) ? action(t('retry'), async () => { await post(`/api/v2/messages/${id}/retry`); refresh(); }) : null),
  section(null, facts([
    [t('state'), badge(m.state)], [t('reason'), m.state_reason], [t('last_reply'), replyText(m.last_code, m.last_reply)],
    [t('from'), m.from], [t('message_id'), h('code', {}, m.message_id)], [t('route'), m.route], [t('attempts'), m.attempts],
    [t('queued_at'), when(m.queued_at)], [t('sent_at'), when(m.sent_at)], [t('next_attempt'), when(m.next_attempt_at)],
    [t('language'), m.language],
  ])),
  section(t('events'), table([
    { label: t('when'), value: (r) => when(r.at || r.occurred_at || r.created_at) }, { label: t('event'), value: (r) => badge(r.type || r.event_type) },
    { label: t('details'), value: (r) => details(r.detail || r.metadata) },
  ], m.events || [])),
  section(t('tracking_hits'), table([
    { label: t('when'), value: (r) => when(r.at) }, { label: t('event'), value: (r) => badge(r.kind) },
    { label: t('machine'), value: (r) => (r.machine ? `${t('yes')} (${r.machine_reason || ''})` : t('no')) },
    { label: 'IP', key: 'ip' }, { label: t('user_agent'), key: 'user_agent' }, { label: 'URL', key: 'url' },
  ], hits.items)));
}

export async function bounces(_, query) {
  return h('div', {}, header(t('bounces')),
    section(null, searchForm([
      { name: 'recipient', label: t('recipient'), value: query.recipient },
      { name: 'class', label: t('class'), type: 'select', value: query.class, options: [['', t('any')], ...['hard', 'soft', 'complaint', 'block', 'delivered'].map((c) => [c, c])] },
      { name: 'source', label: t('source'), value: query.source },
      { name: 'unmatched', label: t('unmatched_only'), type: 'checkbox', value: query.unmatched === 'true' },
    ], '/bounces')),
    section(null, pagedTable({
      path: '/api/v1/feedback/events',
      params: scoped({ ...query, unmatched: query.unmatched === 'true' ? true : undefined }),
      columns: [
        { label: t('when'), value: (r) => when(r.occurred_at) }, { label: t('recipient'), key: 'recipient' },
        { label: t('class'), value: (r) => badge(r.class) }, { label: t('category'), key: 'category' },
        { label: t('code'), value: (r) => [r.code, r.status].filter(Boolean).join(' ') }, { label: t('source'), key: 'source' },
        { label: t('diagnostic'), key: 'diagnostic' },
        { label: t('message'), value: (r) => (r.message_id ? h('a', { href: `#/messages/${r.message_id}` }, t('open')) : t('unmatched')) },
      ],
    })));
}

export async function forwards(_, query) {
  return h('div', {}, header(t('forwards')),
    section(null, pagedTable({
      path: '/api/v1/feedback/forwards',
      params: scoped({ state: query.state }),
      columns: [
        { label: t('created'), value: (r) => when(r.created_at) }, { label: 'URL', key: 'url' },
        { label: t('state'), value: (r) => badge(r.state) }, { label: t('attempts'), key: 'attempts' },
        { label: t('last_reply'), value: (r) => [r.last_status, r.last_error].filter(Boolean).join(' ') },
        { label: t('next_attempt'), value: (r) => when(r.next_attempt_at) },
        { label: '', value: (r) => (r.state === 'delivered' ? null : action(t('retry'), async () => { await post(`/api/v1/feedback/forwards/${r.id}/retry`); refresh(); }, { kind: 'small' })) },
      ],
    })));
}

export async function reports(_, query) {
  const tenant = tenantId();
  if (!tenant) return chooseTenantFirst(t('reports'));
  const to = query.to || new Date().toISOString().slice(0, 10);
  const from = query.from || new Date(Date.now() - 13 * 86400000).toISOString().slice(0, 10);
  const by = query.by || 'day';
  const report = await get('/api/v1/reports', { tenant_id: tenant, from, to, by });
  const choose = form({
    fields: [
      { name: 'from', label: t('from'), type: 'date', value: from }, { name: 'to', label: t('to'), type: 'date', value: to },
      { name: 'by', label: t('by'), type: 'select', value: by, options: ['day', 'ip', 'domain', 'provider', 'campaign'].map((b) => [b, t(`by_${b}`)]) },
    ],
    submitLabel: t('show'), compact: true,
    submit: async (values) => go(`/reports?${new URLSearchParams(values)}`),
  });
  const rows = [...report.rows, { ...report.totals, key: t('total') }];
  return h('div', {}, header(t('reports')), section(null, choose),
    section(t('sent'), barChart(report.rows.map((r) => [r.label || r.key, r.sent]), { title: t('sent') })),
    section(null, table([
      { label: t(`by_${by}`), value: (r) => r.label || r.key }, { label: t('sent'), value: (r) => num(r.sent) },
      { label: t('delivered'), value: (r) => num(r.delivered) },
      { label: t('deferred'), value: (r) => `${num(r.deferred)} (${pct(r.rates.deferral)})` },
      { label: t('blocked'), value: (r) => `${num(r.bounced.block)} (${pct(r.rates.block)})` },
      { label: t('bounced'), value: (r) => `${num(r.bounced.total)} (${pct(r.rates.bounce)})` },
      { label: t('complained'), value: (r) => `${num(r.complaints)} (${pct(r.rates.complaint)})` },
      { label: t('opened'), value: (r) => `${num(r.opens.unique)} (${pct(r.rates.open)})` },
      { label: t('clicked'), value: (r) => `${num(r.clicks.unique)} (${pct(r.rates.click)})` },
      { label: t('unsubscribed'), value: (r) => num(r.unsubscribes) },
      { label: 'TLS', value: (r) => `${num(r.tls)} (${pct(r.rates.tls)})` },
    ], rows)));
}

// What providers' replies hold back now (traffic shaping), and the rules in effect.
export async function shaping(_, query) {
  const all = query.all === 'true';
  const rules = await get('/api/v1/shaping/rules');
  const value = (r) => {
    if (r.action === 'rate') return t('shaping_rate', { count: num(r.value), per: r.per_secs === 1 ? 's' : r.per_secs === 60 ? 'min' : 'h' });
    return r.value == null ? '' : num(r.value);
  };
  return h('div', {}, header(t('shaping'),
    action(all ? t('shaping_active_only') : t('shaping_show_week'), async () => go(all ? '/shaping' : '/shaping?all=true'))),
  section(null, h('p', { class: 'muted' }, t('shaping_help'))),
  section(null, pagedTable({
    path: '/api/v1/shaping',
    params: { all: all ? true : undefined },
    empty: t('shaping_none'),
    columns: [
      { label: t('provider'), key: 'provider' },
      { label: t('shaping_whom'), value: (r) => `${t(`scope_${r.scope}`)} ${r.subject_label || r.subject}`.trim() },
      { label: t('action'), value: (r) => badge(r.action) }, { label: t('value'), value },
      { label: t('until'), value: (r) => when(r.until) },
      { label: t('rule'), value: (r) => h('code', { title: r.rule_text }, r.rule) },
      { label: t('last_reply'), key: 'reply' }, { label: t('shaping_fired'), value: (r) => num(r.fired) },
      { label: '', value: (r) => (r.active
        ? action(t('shaping_lift'), async () => { await post(`/api/v1/shaping/${r.id}/lift`); refresh(); }, { kind: 'small', confirmText: t('shaping_lift_confirm') })
        : (r.lifted_at ? t('shaping_lifted_by', { who: r.lifted_by || '' }) : t('shaping_over'))) },
    ],
  })),
  section(t('shaping_rules'), table([
    { label: t('rule'), value: (r) => h('code', {}, r.key) }, { label: t('provider'), key: 'provider' },
    { label: t('details'), value: (r) => h('code', {}, r.text) },
  ], rules.rules)),
  section(t('shaping_providers'), h('p', { class: 'muted' }, t('provider_rate_help')), table([
    { label: t('provider'), key: 'name' }, { label: t('shaping_mx'), value: (r) => r.mx_suffixes.join(', ') },
    { label: t('source'), key: 'origin' },
    { label: t('provider_rate'), value: (r) => (r.rate_per_second == null ? t('provider_no_rate') : t('per_second', { count: num(r.rate_per_second) })) },
    { label: t('provider_peak'), value: (r) => (r.peak_last_minute == null ? '–' : t('per_second', { count: num(r.peak_last_minute) })) },
  ], rules.providers)));
}

export async function compliance() {
  const tenant = tenantId();
  if (!tenant) return chooseTenantFirst(t('compliance'));
  const c = await get(`/api/v1/tenants/${tenant}/compliance`);
  return h('div', {}, header(t('compliance'), badge(c.compliant ? 'green' : 'red')),
    section(null, table([
      { label: t('rule'), value: (r) => h('div', {}, h('strong', {}, r.title), h('div', { class: 'muted' }, r.rule)) },
      { label: t('status'), value: (r) => badge(r.status) },
      { label: t('evidence'), value: (r) => h('ul', {}, r.evidence.map((e) => h('li', {}, e))) },
    ], c.rules)));
}


