// A domain's DMARC aggregate reports: the pass rates over the last 30 days, its own IPs
// failing DMARC, the senders that are not ours, every source, and the reports received.

import { get } from '../api.js';
import { badge, facts, pagedTable, section, table } from '../components.js';
import { h, num, pct, when } from '../dom.js';
import { t } from '../i18n.js';

function sourceTable(rows, id) {
  return h('div', { id }, rows.length ? table([
    { label: t('ip_address'), value: (r) => h('code', {}, r.ip) },
    { label: t('dmarc_origin'), value: (r) => badge(r.own ? 'own' : 'unknown') },
    { label: t('messages'), value: (r) => num(r.messages) },
    { label: t('dmarc_passed'), value: (r) => num(r.passed) },
    { label: t('dmarc_dkim_aligned'), value: (r) => num(r.dkim_aligned) },
    { label: t('dmarc_spf_aligned'), value: (r) => num(r.spf_aligned) },
  ], rows) : h('p', { class: 'muted' }, t('dmarc_none')));
}

/// The DMARC sections of the domain page `id`.
export async function dmarcSections(id) {
  const s = await get(`/api/v1/domains/${id}/dmarc`);
  return [
    section(t('dmarc_reports'), h('p', { class: 'muted' }, t('dmarc_help', { days: s.days })),
      h('div', { id: 'dmarc-summary' }, facts([
        [t('dmarc_report_count'), h('span', { 'data-figure': 'reports' }, num(s.reports))],
        [t('messages'), h('span', { 'data-figure': 'messages' }, num(s.messages))],
        [t('dmarc_pass_rate'), h('span', { 'data-figure': 'dmarc_pass_rate' }, pct(s.dmarc_pass_rate))],
        [t('dmarc_dkim_rate'), h('span', { 'data-figure': 'dkim_pass_rate' }, pct(s.dkim_pass_rate))],
        [t('dmarc_spf_rate'), h('span', { 'data-figure': 'spf_pass_rate' }, pct(s.spf_pass_rate))],
        [t('dmarc_sources'), h('span', { 'data-figure': 'source_count' }, num(s.source_count))],
      ]))),
    section(t('dmarc_own_failing'), sourceTable(s.own_failing, 'dmarc-own-failing')),
    section(t('dmarc_unknown_senders'), sourceTable(s.unknown_senders, 'dmarc-unknown')),
    section(t('dmarc_all_sources'), sourceTable(s.sources, 'dmarc-sources')),
    section(t('dmarc_received'), pagedTable({
      path: `/api/v1/domains/${id}/dmarc/reports`,
      columns: [
        { label: t('when'), value: (r) => when(r.received_at) },
        { label: t('dmarc_reporter'), key: 'org_name' },
        { label: t('dmarc_period'), value: (r) => `${when(r.begin)} – ${when(r.end)}` },
        { label: t('messages'), value: (r) => num(r.messages) },
        { label: t('dmarc_policy'), key: 'policy' },
      ],
      empty: t('dmarc_none'),
    })),
  ];
}
