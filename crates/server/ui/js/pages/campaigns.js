// Campaigns: the list, the builder (audience, template, schedule, throttle, A/B variants,
// autoresponder steps), test sends, the life-cycle actions, live statistics with charts,
// and the per-recipient ledger.

import { del, get, post } from '../api.js';
import { action, badge, chooseTenantFirst, facts, form, header, notice, pagedTable, replyText, section, table, tabs } from '../components.js';
import { barChart, lineChart } from '../chart.js';
import { h, locale, num, pct, replace, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { isAdmin, owned, scoped, session } from '../session.js';

const STATUSES = ['draft', 'scheduled', 'sending', 'paused', 'auto_paused', 'sent', 'cancelled'];
const LEDGER = ['pending', 'queued', 'sent', 'deferred', 'bounced', 'failed', 'skipped', 'cancelled', 'mirrored'];

export async function list(_, query) {
  if (isAdmin() && !session.tenant) return chooseTenantFirst(t('campaigns'));
  const filter = h('select', { 'aria-label': t('status') }, h('option', { value: '' }, t('all_states')),
    STATUSES.map((s) => h('option', { value: s, selected: query.status === s }, t(`cs_${s}`))));
  filter.addEventListener('change', () => go(filter.value ? `/campaigns?status=${filter.value}` : '/campaigns'));
  return h('div', {}, header(t('campaigns'), filter, h('a', { href: '#/campaigns/new', class: 'button', id: 'new-campaign' }, t('new_campaign'))),
    section(null, pagedTable({
      path: '/api/v2/campaigns',
      params: scoped({ status: query.status, type: query.type }),
      columns: [
        { label: t('name'), key: 'name' }, { label: t('type'), value: (r) => t(`ck_${r.type}`) },
        { label: t('status'), value: (r) => badge(r.status) }, { label: t('recipients'), value: (r) => num(r.recipients) },
        { label: t('send_at'), value: (r) => when(r.send_at) }, { label: t('updated'), value: (r) => when(r.updated_at) },
      ],
      onRow: (r) => go(`/campaigns/${r.id}`),
    })));
}

const split = (text) => (text || '').split(',').map((s) => s.trim()).filter(Boolean);

/// A list editor: rows of small inputs, added and removed; `read()` gives the rows'
/// values (rows left empty are dropped).
function rows(make, first) {
  const list = h('div', { class: 'rows' });
  const add = (initial) => {
    const row = make(initial);
    const remove = h('button', { type: 'button', class: 'small danger', 'aria-label': t('remove') }, '×');
    remove.addEventListener('click', () => wrap.remove());
    const wrap = h('div', { class: 'rule actions' }, row.el, remove);
    wrap.read = row.read;
    list.append(wrap);
  };
  (first || []).forEach(add);
  const el = h('div', { class: 'builder' }, list, h('button', { type: 'button', class: 'small', onclick: () => add() }, t('add_row')));
  return { el, read: () => [...list.children].map((r) => r.read()).filter(Boolean), add };
}

function templateSelect(options, label) {
  return h('select', { 'aria-label': label }, h('option', { value: '' }, '–'), options.map(([v, text]) => h('option', { value: v }, text)));
}

/// The A/B test's variants: each a name and what differs (subject, sender name, template).
function variantsEditor(templateOptions) {
  const list = rows(() => {
    const name = h('input', { placeholder: t('variant'), 'aria-label': t('variant'), class: 'variant-name' });
    const subject = h('input', { placeholder: t('subject'), 'aria-label': t('subject'), class: 'variant-subject' });
    const fromName = h('input', { placeholder: t('from_name'), 'aria-label': t('from_name') });
    const template = templateSelect(templateOptions, t('template'));
    return {
      el: h('div', { class: 'actions' }, name, subject, fromName, template),
      read: () => (name.value.trim() ? Object.fromEntries(Object.entries({ name: name.value.trim(), subject: subject.value.trim(),
        from_name: fromName.value.trim(), template_id: template.value }).filter(([, v]) => v !== '')) : null),
    };
  }, [{}, {}]);
  const share = h('input', { type: 'number', step: '0.05', min: '0.05', max: '1', value: '0.2', 'aria-label': t('test_share') });
  const by = h('select', { 'aria-label': t('winner_by') }, h('option', { value: 'opens' }, t('by_opens')), h('option', { value: 'clicks' }, t('by_clicks')));
  const wait = h('input', { type: 'number', min: '1', value: '4', 'aria-label': t('wait_hours') });
  const el = h('div', { class: 'variants' }, list.el,
    h('div', { class: 'actions' }, h('label', {}, t('test_share'), ' ', share), h('label', {}, t('winner_by'), ' ', by), h('label', {}, t('wait_hours'), ' ', wait)));
  return {
    el,
    read: () => {
      const variants = list.read();
      return variants.length ? { variants, test_share: Number(share.value), winner_by: by.value, wait_hours: Number(wait.value) } : undefined;
    },
  };
}

/// An autoresponder's steps: each a template and a delay after the previous step.
function stepsEditor(templateOptions) {
  const list = rows(() => {
    const template = templateSelect(templateOptions, t('template'));
    const delay = h('input', { type: 'number', min: '0', value: '0', 'aria-label': t('delay_hours') });
    return {
      el: h('div', { class: 'actions' }, template, h('label', {}, t('delay_hours'), ' ', delay)),
      read: () => (template.value ? { template_id: template.value, delay_hours: Number(delay.value || 0) } : null),
    };
  }, [{}]);
  return { el: list.el, read: () => { const steps = list.read(); return steps.length ? steps : undefined; } };
}

export async function create() {
  if (isAdmin() && !session.tenant) return chooseTenantFirst(t('new_campaign'));
  const [templates, segments] = await Promise.all([
    get('/api/v2/templates', scoped({ limit: 500 })),
    get('/api/v2/segments', scoped({ limit: 500 })),
  ]);
  const templateOptions = templates.items.map((tpl) => [tpl.id, `${tpl.name} (${tpl.language})`]);
  const variants = variantsEditor(templateOptions);
  const steps = stepsEditor(templateOptions);
  const builder = form({
    fields: [
      { name: 'name', label: t('name'), required: true },
      { name: 'type', label: t('type'), type: 'select', options: ['regular', 'ab_test', 'autoresponder', 'rss'].map((k) => [k, t(`ck_${k}`)]) },
      { name: 'template_id', label: t('template'), type: 'select', options: [['', '–'], ...templateOptions], help: t('template_help') },
      { name: 'segments', label: t('audience_segments'), type: 'multiselect', options: segments.items.map((s) => [s.id, s.name]) },
      { name: 'tags', label: t('audience_tags'), placeholder: 'TYPE:LAWYER, LANG:FR' },
      { name: 'all', label: t('audience_all'), type: 'checkbox' },
      { name: 'send_at', label: t('send_at'), type: 'datetime-local', help: t('send_at_help') },
      { name: 'per_hour', label: t('throttle_per_hour'), type: 'number', min: 1 },
      { name: 'window_from', label: t('window_from'), type: 'time' },
      { name: 'window_to', label: t('window_to'), type: 'time' },
      { name: 'window_zone', label: t('window_zone'), type: 'select', options: [['tenant', t('zone_tenant')], ['recipient', t('zone_recipient')]] },
      { name: 'window_days', label: t('window_days'), placeholder: 'mon, tue, wed, thu, fri', help: t('window_days_help') },
      { name: 'trigger', label: t('trigger'), placeholder: 'subscription / tag:TYPE:LAWYER / event:signed_up', help: t('trigger_help') },
      { name: 'ab', label: t('ab_variants'), type: 'custom', control: variants.el, read: variants.read, help: t('ab_help') },
      { name: 'steps', label: t('steps'), type: 'custom', control: steps.el, read: steps.read, help: t('steps_help') },
      { name: 'rss_url', label: t('rss_url'), placeholder: 'https://blog.example/feed.xml', help: t('rss_help') },
      { name: 'rss_interval', label: t('rss_interval'), type: 'number', min: 15, max: 10080, placeholder: '60' },
    ],
    submitLabel: t('create_draft'),
    submit: (v) => {
      const audience = {};
      if (v.segments && v.segments.length) audience.segments = v.segments;
      if (split(v.tags).length) audience.tags = split(v.tags);
      if (v.all) audience.all = true;
      // Variants go with an A/B test, steps with an autoresponder (the other editor's rows
      // are ignored, not sent).
      const body = { name: v.name, type: v.type, template_id: v.template_id, trigger: v.trigger,
        ab: v.type === 'ab_test' ? v.ab : undefined, steps: v.type === 'autoresponder' ? v.steps : undefined, send_at: v.send_at };
      if (Object.keys(audience).length) body.audience = audience;
      if (v.type === 'rss') body.rss = { url: v.rss_url, interval_minutes: v.rss_interval || undefined };
      if (v.per_hour) body.throttle = { per_hour: v.per_hour };
      if (v.window_from || v.window_to) {
        body.window = { from: v.window_from, to: v.window_to, zone: v.window_zone };
        if (split(v.window_days).length) body.window.days = split(v.window_days).map((d) => d.toLowerCase());
      }
      return post('/api/v2/campaigns', owned(body));
    },
    onDone: (campaign) => go(`/campaigns/${campaign.id}`),
  });
  const typeSelect = builder.inputs.type;
  const showFor = () => {
    const type = typeSelect.value;
    builder.querySelector('[data-field="ab"]').hidden = type !== 'ab_test';
    builder.querySelector('[data-field="steps"]').hidden = type !== 'autoresponder';
    builder.querySelector('[data-field="trigger"]').hidden = type !== 'autoresponder';
    builder.querySelector('[data-field="rss_url"]').hidden = type !== 'rss';
    builder.querySelector('[data-field="rss_interval"]').hidden = type !== 'rss';
  };
  typeSelect.addEventListener('change', showFor);
  showFor();
  return h('div', {}, header(t('new_campaign')), section(null, builder));
}

function actions(c) {
  const run = (verb, label, opts) => action(label, async () => { await post(`/api/v2/campaigns/${c.id}/${verb}`, verb === 'schedule' ? {} : undefined); refresh(); }, opts);
  switch (c.status) {
    case 'draft':
      return [run('start', t('start_now'), { kind: 'primary', confirmText: t('confirm_start') }),
        c.send_at ? run('schedule', t('schedule')) : null,
        action(t('delete'), async () => { await del(`/api/v2/campaigns/${c.id}`); go('/campaigns'); }, { kind: 'danger', confirmText: t('confirm_delete') })];
    case 'scheduled':
    case 'sending':
      return [run('pause', t('pause')), run('cancel', t('cancel'), { kind: 'danger', confirmText: t('confirm_cancel') })];
    case 'paused':
    case 'auto_paused':
      return [run('resume', t('resume'), { kind: 'primary' }), run('cancel', t('cancel'), { kind: 'danger', confirmText: t('confirm_cancel') })];
    default:
      return [];
  }
}

function testSend(c) {
  return form({
    fields: [
      { name: 'emails', label: t('test_addresses'), required: true, placeholder: 'me@example.com, boss@example.com' },
      { name: 'contact_id', label: t('sample_contact'), help: t('sample_contact_help') },
    ],
    submitLabel: t('send_test'),
    submit: (v) => post(`/api/v2/campaigns/${c.id}/test`, { emails: split(v.emails), contact_id: v.contact_id }),
    onDone: (sent) => notice(t('test_sent', { count: sent.length })),
    compact: true,
  });
}

function kpi(label, value, bad) {
  return h('div', { class: bad ? 'kpi bad' : 'kpi' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

/// The figures, redrawn in place every few seconds while the campaign sends.
function statsView(stats) {
  const total = (k) => stats.totals[k] || 0;
  const kpis = h('div', { class: 'kpis', id: 'campaign-kpis' },
    kpi(t('recipients'), num(stats.recipients)), kpi(t('queued'), num(total('queued'))),
    h('div', { class: 'kpi', id: 'kpi-sent' }, h('div', { class: 'value' }, num(total('sent'))), h('div', { class: 'label' }, t('sent'))),
    kpi(t('deferred'), num(total('deferred'))), kpi(t('bounced'), `${num(total('bounced'))} · ${pct(stats.rates.bounce)}`, stats.rates.bounce > 0.05),
    kpi(t('opened'), `${num(total('opened_unique'))} · ${pct(stats.rates.open)}`), kpi(t('clicked'), `${num(total('clicked_unique'))} · ${pct(stats.rates.click)}`),
    kpi(t('unsubscribed'), `${num(total('unsubscribed'))} · ${pct(stats.rates.unsubscribe)}`),
    kpi(t('complained'), `${num(total('complained'))} · ${pct(stats.rates.complaint)}`, stats.rates.complaint > 0.001));
  // A campaign sent within one hour starts from the hour before at zero: a rise, not a
  // lone dot.
  const hourly = stats.hourly.length === 1
    ? [{ hour: new Date(new Date(stats.hourly[0].hour).getTime() - 3600000).toISOString(), counts: {} }, ...stats.hourly]
    : stats.hourly;
  const hours = hourly.map((b) => new Date(b.hour).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' }));
  const series = ['sent', 'opened', 'clicked', 'bounced'].map((k) => ({ name: t(k), values: hourly.map((b) => b.counts[k] || 0) }));
  const breakdown = (title, map) => (Object.keys(map).length
    ? section(title, barChart(Object.entries(map).map(([k, v]) => [k, v]), { title })) : null);
  const variants = Object.entries(stats.by_variant || {});
  return h('div', {}, kpis,
    stats.hourly.length ? section(t('over_time'), lineChart(hours, series, { title: t('over_time') })) : null,
    variants.length ? section(t('per_variant'), table([
      { label: t('variant'), value: (r) => r[0] }, { label: t('recipients'), value: (r) => num(r[1].recipients) },
      { label: t('sent'), value: (r) => num(r[1].by_state.sent || 0) }, { label: t('opened'), value: (r) => num(r[1].opened_unique) },
      { label: t('clicked'), value: (r) => num(r[1].clicked_unique) },
    ], variants)) : null,
    breakdown(t('per_step'), stats.by_step), breakdown(t('per_language'), stats.by_language), breakdown(t('per_link'), stats.by_link),
    section(t('by_state'), facts(Object.entries(stats.by_state).map(([k, v]) => [badge(k), num(v)]))));
}

function ledger(c, state) {
  const filter = h('select', { 'aria-label': t('state') }, h('option', { value: '' }, t('all_states')),
    LEDGER.map((s) => h('option', { value: s, selected: state === s }, s)));
  const holder = h('div');
  const draw = () => replace(holder, pagedTable({
    path: `/api/v2/campaigns/${c.id}/recipients`,
    params: { state: filter.value },
    columns: [
      { label: t('email'), key: 'email' }, { label: t('state'), value: (r) => badge(r.state) },
      { label: t('variant'), key: 'variant' }, { label: t('last_reply'), value: (r) => (replyText(r.last_code, r.last_reply) ?? r.detail) },
      { label: t('sent_at'), value: (r) => when(r.sent_at || r.next_attempt_at) },
      { label: t('local_time'), value: (r) => (r.local_time ? `${r.local_time.slice(0, 16).replace('T', ' ')} (${r.time_zone})` : '–') },
      { label: t('message'), value: (r) => (r.message_id ? h('a', { href: `#/messages/${r.message_id}` }, t('open')) : '–') },
    ],
  }));
  filter.addEventListener('change', draw);
  draw();
  return h('div', {}, h('div', { class: 'actions' }, filter,
    action(t('retry_failed'), async () => { const r = await post(`/api/v2/campaigns/${c.id}/recipients/retry`); notice(t('retried', { count: r.retried ?? r.count ?? 0 })); draw(); })),
  holder);
}

/// An rss campaign's feed: its checks, the last error, and its runs.
function feedRuns(c) {
  const holder = h('div', {}, t('loading'));
  get(`/api/v2/campaigns/${c.id}/runs`).then((f) => {
    holder.replaceChildren(
      facts([[t('rss_url'), f.url], [t('rss_interval'), String(f.interval_minutes)],
        [t('rss_last_checked'), when(f.last_checked_at)], [t('rss_next_check'), when(f.next_check_at)],
        [t('rss_last_error'), f.last_error || '–']]),
      table([
        { label: '#', value: (r) => r.run }, { label: t('rss_items'), value: (r) => r.titles.join(' · ') },
        { label: t('recipients'), value: (r) => r.recipients }, { label: t('created'), value: (r) => when(r.created_at) },
      ], f.runs));
  }).catch((e) => holder.replaceChildren(String(e.message || e)));
  return holder;
}

/// Who runs an autoresponder's sequence, at which step, and when the next one is due.
function enrollments(c) {
  return pagedTable({
    path: `/api/v2/campaigns/${c.id}/enrollments`,
    columns: [
      { label: t('email'), key: 'email' }, { label: t('steps_sent'), key: 'step' },
      { label: t('state'), value: (r) => badge(r.state) }, { label: t('next_step_at'), value: (r) => when(r.next_at) },
      { label: t('enrolled_at'), value: (r) => when(r.enrolled_at) }, { label: t('details'), key: 'detail' },
    ],
  });
}

export async function detail({ id }, query) {
  const c = await get(`/api/v2/campaigns/${id}`);
  const statsHolder = h('div', { id: 'campaign-stats' });
  const drawStats = async () => {
    const stats = await get(`/api/v2/campaigns/${id}/stats`);
    replace(statsHolder, statsView(stats));
  };
  await drawStats();
  const live = ['scheduled', 'sending'].includes(c.status);
  if (live) {
    const timer = setInterval(async () => {
      if (!document.body.contains(statsHolder)) { clearInterval(timer); return; }
      try {
        await drawStats();
        const now = await get(`/api/v2/campaigns/${id}`);
        if (now.status !== c.status) { clearInterval(timer); refresh(); }
      } catch { clearInterval(timer); }
    }, 3000);
  }
  let audience = null;
  if (c.status === 'draft' || c.status === 'scheduled') audience = await get(`/api/v2/campaigns/${id}/audience`).catch(() => null);
  // Names rather than ids: the template's and the segments'.
  const [template, ...segmentNames] = await Promise.all([
    c.template_id ? get(`/api/v2/templates/${c.template_id}`).then((tpl) => `${tpl.name} (${tpl.language})`).catch(() => c.template_id) : Promise.resolve(null),
    ...(c.audience.segments || []).map((s) => get(`/api/v2/segments/${s}`, scoped()).then((seg) => seg.name).catch(() => s)),
  ]);
  return h('div', {}, header(c.name, actions(c)),
    section(null, facts([
      [t('status'), h('span', { id: 'campaign-status' }, badge(c.status), c.status_reason ? ` ${c.status_reason}` : '')],
      [t('type'), t(`ck_${c.type}`)],
      [t('template'), c.template_id ? h('a', { href: `#/templates/${c.template_id}` }, template) : '–'],
      [t('audience'), [c.audience.all ? t('audience_all') : null, ...segmentNames.map((s) => `${t('segment')} « ${s} »`), ...(c.audience.tags || []).map((tag) => `${t('tag')} ${tag}`)].filter(Boolean).join(', ')],
      audience ? [t('audience_count'), h('strong', { id: 'audience-count' }, `${num(audience.count)}${audience.fixed ? '' : ` (${t('estimate')})`}`)] : null,
      [t('send_at'), when(c.send_at)], [t('throttle_per_hour'), c.throttle ? num(c.throttle.per_hour) : '–'],
      [t('window'), c.window ? `${c.window.days ? `${c.window.days.join(', ')} ` : ''}${c.window.from}–${c.window.to} (${t(`zone_${c.window.zone}`)})` : '–'],
      c.trigger ? [t('trigger'), c.trigger] : null,
      [t('started'), when(c.started_at)], [t('finished'), when(c.finished_at)],
    ])),
    c.ab ? section(t('ab_variants'), h('pre', { class: 'code' }, JSON.stringify(c.ab, null, 2)),
      c.ab.winner ? null : h('div', { class: 'actions' }, (c.ab.variants || []).map((v) =>
        action(t('pick_winner', { name: v.name }), async () => { await post(`/api/v2/campaigns/${id}/winner`, { variant: v.name }); refresh(); }, { kind: 'small', confirmText: t('confirm_winner') })))) : null,
    c.steps && c.steps.length ? section(t('steps'), table([
      { label: '#', value: (r) => r.index }, { label: t('template'), value: (r) => r.template_id },
      { label: t('delay_hours'), value: (r) => r.delay_hours },
    ], c.steps.map((s, index) => ({ ...s, index })))) : null,
    tabs([
      [t('statistics'), () => statsHolder],
      c.type === 'autoresponder' ? [t('enrollments'), () => enrollments(c)]
        : c.type === 'rss' ? [t('rss_runs'), () => feedRuns(c)] : [t('recipients'), () => ledger(c, query.state)],
      [t('test_send'), () => testSend(c)],
    ]));
}
