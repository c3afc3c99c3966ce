// The dashboard, for one tenant or (an admin's) all: today's sends against quota, the
// queue, IPs by state with warm-up progress, blacklist and DNS status, today's bounce and
// complaint rates against their thresholds, running campaigns with live progress, alerts.

import { get } from '../api.js';
import { badge, dnsBadge, header, progress, section, setProgress, sizeBars, table } from '../components.js';
import { barChart } from '../chart.js';
import { h, num, pct, when } from '../dom.js';
import { t } from '../i18n.js';
import { go } from '../nav.js';
import { isAdmin, scoped, session, tenantName, tenantId } from '../session.js';

function kpi(id, label, value, state) {
  return h('div', { class: `kpi ${state || ''}`, id }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

const today = () => new Date().toISOString().slice(0, 10);

/// Today's figures of the tenants in view (the API sums every tenant's for an admin who
/// picked none), with the strictest of their thresholds. A failed call fails the page: a
/// figure is never shown as 0 for want of an answer.
async function rates(tenants) {
  let bounceLimit = null;
  let complaintLimit = null;
  const [report, deliveries] = await Promise.all([
    get('/api/v1/reports', scoped({ from: today(), to: today(), by: 'day' })),
    Promise.all(tenants.map((id) => get(`/api/v1/tenants/${id}/delivery`))),
  ]);
  const tot = report.totals;
  const handed = tot.sent + tot.refused;
  const bounced = tot.bounced.total;
  const complaints = tot.complaints;
  for (const delivery of deliveries) {
    const limits = delivery && delivery.campaign_auto_pause;
    if (limits) {
      bounceLimit = bounceLimit === null ? limits.bounce_rate : Math.min(bounceLimit, limits.bounce_rate);
      complaintLimit = complaintLimit === null ? limits.complaint_rate : Math.min(complaintLimit, limits.complaint_rate);
    }
  }
  return { bounce: handed ? bounced / handed : 0, complaint: handed ? complaints / handed : 0, handed, bounceLimit, complaintLimit };
}

function runningCampaign(c) {
  const bar = progress(0, 1, c.name);
  const figure = h('span', { class: 'muted' });
  const update = async () => {
    const stats = await get(`/api/v2/campaigns/${c.id}/stats`);
    const done = (stats.totals.sent || 0) + (stats.totals.bounced || 0) + (stats.totals.failed || 0) + (stats.totals.skipped || 0);
    setProgress(bar, done, stats.recipients || 0);
    figure.textContent = `${num(done)} / ${num(stats.recipients)}`;
  };
  update();
  const timer = setInterval(() => { if (!document.body.contains(bar)) clearInterval(timer); else update().catch(() => clearInterval(timer)); }, 5000);
  return h('div', { class: 'record link', tabindex: 0, onclick: () => go(`/campaigns/${c.id}`) },
    h('div', {}, h('strong', {}, c.name), ' ', badge(c.status), bar), figure);
}

export async function page() {
  const tenant = tenantId();
  const inView = tenant ? [tenant] : session.tenants.map((tn) => tn.id);
  const [quota, backlog, ips, domains, alerts, campaigns, today] = await Promise.all([
    get('/api/v1/warmup/quota', scoped({ limit: 500 })),
    get('/api/v2/messages/backlog', scoped()),
    get('/api/v1/ips', { limit: 500 }),
    get('/api/v1/domains', scoped({ limit: 500 })),
    get('/api/v1/alerts', { limit: 10 }).catch(() => ({ items: [] })),
    tenant ? get('/api/v2/campaigns', scoped({ status: 'sending', limit: 20 })) : Promise.resolve({ items: [] }),
    rates(inView),
  ]);
  const myIps = ips.items.filter((ip) => !tenant || ip.tenant_id === tenant || ip.tenant_id === null);
  const sent = quota.items.reduce((n, q) => n + q.sent_today, 0);
  // Only warming IPs have a quota: their sends are set against it, an active IP's are not.
  const limited = quota.items.filter((q) => q.daily_quota !== null && q.daily_quota !== undefined);
  const cap = limited.reduce((n, q) => n + q.daily_quota, 0);
  const sentCapped = limited.reduce((n, q) => n + q.sent_today, 0);
  const byState = {};
  myIps.forEach((ip) => { byState[ip.state] = (byState[ip.state] || 0) + 1; });
  const listed = myIps.filter((ip) => ip.blacklist_status === 'listed').length;
  const dnsFailing = domains.items.filter((d) => d.dns_ok === false).length;
  const dnsUnknown = domains.items.filter((d) => d.dns_ok === null || d.dns_ok === undefined).length;
  const over = (rate, limit) => (limit !== null && rate > limit ? 'bad' : '');
  const sendsBar = cap ? progress(sentCapped, cap, t('warming_sent_today')) : progress(sent, sent || 1, t('sent_today'));
  const view = h('div', {}, header(tenant ? `${t('dashboard')} · ${tenantName(tenant)}` : `${t('dashboard')} · ${t('all_tenants')}`),
    h('div', { class: 'kpis' },
      kpi('kpi-sent-today', t('sent_today'), num(sent)),
      cap ? kpi('kpi-warming-today', t('warming_sent_today'), `${num(sentCapped)} / ${num(cap)}`, sentCapped > cap ? 'bad' : '') : null,
      kpi('kpi-queue', t('queue_depth'), num(backlog.queued + backlog.deferred + backlog.sending)),
      kpi('kpi-ips', t('ips'), Object.entries(byState).map(([s, n]) => `${n} ${s}`).join(' · ') || '0'),
      kpi('kpi-blacklisted', t('blacklisted_ips'), num(listed), listed ? 'bad' : ''),
      kpi('kpi-dns', t('dns_failing'), `${num(dnsFailing)}${dnsUnknown ? ` (+${dnsUnknown} ${t('unchecked')})` : ''}`, dnsFailing ? 'bad' : ''),
      kpi('kpi-bounce', t('bounce_rate_today'), `${pct(today.bounce)}${today.bounceLimit !== null ? ` / ${pct(today.bounceLimit)}` : ''}`, over(today.bounce, today.bounceLimit)),
      kpi('kpi-complaint', t('complaint_rate_today'), `${pct(today.complaint)}${today.complaintLimit !== null ? ` / ${pct(today.complaintLimit)}` : ''}`, over(today.complaint, today.complaintLimit))),
    section(t('sent_today'), sendsBar, h('p', { class: 'muted' }, t('queue_detail', { queued: num(backlog.queued), deferred: num(backlog.deferred), sending: num(backlog.sending) }))),
    section(t('warmup_progress'), quota.items.length
      ? barChart(quota.items.map((q) => [q.warmup_day ? `${q.ip} (${t('day')} ${q.warmup_day})` : q.ip, q.sent_today, q.daily_quota ?? undefined]), { title: t('warmup_progress') })
      : h('p', { class: 'muted' }, t('nothing_yet'))),
    section(t('running_campaigns'), tenant
      ? (campaigns.items.length ? campaigns.items.map(runningCampaign) : h('p', { class: 'muted' }, t('no_running_campaigns')))
      : h('p', { class: 'muted' }, t('choose_tenant_for_campaigns'))),
    section(t('ips_and_blacklists'), table([
      { label: t('ip_address'), value: (r) => h('code', {}, r.ip) }, { label: t('state'), value: (r) => badge(r.state) },
      { label: t('blacklists'), value: (r) => badge(r.blacklist_status) }, { label: t('since'), value: (r) => when(r.state_changed_at) },
    ], myIps.slice(0, 20), (r) => go(`/ips/${r.id}`))),
    section(t('domains'), table([
      { label: t('domain'), key: 'domain' },
      { label: t('dns'), value: (r) => dnsBadge(r.dns_ok) },
      { label: t('last_check'), value: (r) => when(r.last_checked_at) },
    ], domains.items.slice(0, 20), (r) => go(`/domains/${r.id}`))),
    section(t('recent_alerts'), table([
      { label: t('when'), value: (r) => when(r.last_at) }, { label: t('severity'), value: (r) => badge(r.severity) },
      { label: t('alert'), key: 'title' }, { label: t('details'), key: 'message' },
      isAdmin() ? { label: t('tenant'), value: (r) => tenantName(r.tenant_id) } : null,
    ].filter(Boolean), alerts.items)));
  setTimeout(() => sizeBars(view), 0);
  return view;
}


