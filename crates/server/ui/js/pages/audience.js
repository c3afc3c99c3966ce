// Contacts: search and detail with their timeline, CSV imports with live progress,
// segments with a builder and a live count, the suppression list, GDPR export and erasure.

import { api, del, get, patch, post, upload } from '../api.js';
import { builder } from './segment_builder.js';
import { action, badge, chooseTenantFirst, details, errorText, facts, form, header, notice, pagedTable, progress, reasonText, section, setProgress, stateLabel } from '../components.js';
import { h, num, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { isAdmin, owned, scoped, session } from '../session.js';

const STATUSES = ['active', 'unsubscribed', 'bounced', 'complained', 'suppressed', 'erased'];

function needsTenant() {
  return isAdmin() && !session.tenant;
}

export async function contacts(_, query) {
  if (needsTenant()) return chooseTenantFirst(t('contacts'));
  const filters = form({
    fields: [
      { name: 'email', label: t('search_email'), value: query.email, placeholder: 'name@example.com / @example.com' },
      { name: 'status', label: t('status'), type: 'select', value: query.status, options: [['', t('any')], ...STATUSES.map((s) => [s, stateLabel(s)])] },
      { name: 'tag', label: t('tag'), value: query.tag },
      { name: 'language', label: t('language'), value: query.language },
      { name: 'country', label: t('country'), value: query.country },
    ],
    submitLabel: t('search'),
    submit: async (values) => go(`/contacts?${new URLSearchParams(values)}`),
    compact: true,
  });
  return h('div', {}, header(t('contacts'), h('a', { href: '#/imports' }, t('import_csv'))),
    section(null, filters),
    section(null, pagedTable({
      path: '/api/v2/contacts',
      params: scoped(query),
      columns: [
        { label: t('email'), key: 'email' },
        { label: t('name'), value: (r) => [r.first_name, r.last_name].filter(Boolean).join(' ') },
        { label: t('status'), value: (r) => badge(r.status) }, { label: t('validation'), value: (r) => badge(r.validation.status) },
        { label: t('language'), value: languageOf }, { label: t('country'), key: 'country' },
        { label: t('tags'), value: (r) => r.tags.join(', ') }, { label: t('created'), value: (r) => when(r.created_at) },
      ],
      onRow: (r) => go(`/contacts/${r.id}`),
    })));
}

/// A contact's language, marked when it was not given but inferred from its country.
function languageOf(c) {
  if (!c.language) return '–';
  if (!c.language_inferred) return c.language;
  return [c.language, ' ', h('small', { class: 'muted', title: t('language_inferred_hint') }, `(${t('language_inferred')})`)];
}

export async function contact({ id }) {
  const c = await get(`/api/v2/contacts/${id}`, scoped());
  const tags = form({
    fields: [
      { name: 'add', label: t('add_tags'), placeholder: 'TYPE:LAWYER, LANG:FR' },
      { name: 'remove', label: t('remove_tags') },
    ],
    submitLabel: t('apply'),
    submit: (values) => post('/api/v2/contacts/tags', owned({
      filter: { field: 'email', op: 'eq', value: c.email },
      add: (values.add || '').split(',').map((s) => s.trim()).filter(Boolean),
      remove: (values.remove || '').split(',').map((s) => s.trim()).filter(Boolean),
    })),
    onDone: () => refresh(),
    compact: true,
  });
  const exportButton = action(t('gdpr_export'), async () => {
    const response = await api('GET', `/api/v2/contacts/${id}/export`, { params: scoped(), raw: true });
    const blob = await response.blob();
    const link = h('a', { href: URL.createObjectURL(blob), download: `contact-${id}.json` });
    document.body.append(link);
    link.click();
    link.remove();
  });
  return h('div', {}, header(c.email, exportButton,
    action(t('gdpr_erase'), async () => { await del(`/api/v2/contacts/${id}`, scoped()); notice(t('erased')); go('/contacts'); },
      { kind: 'danger', confirmText: t('confirm_erase') })),
  section(null, facts([
    [t('status'), badge(c.status)], [t('validation'), h('span', { id: 'validation' }, badge(c.validation.status), ' ', c.validation.reasons.map((r, i) => [i ? ' · ' : '', reasonText(r)]))],
    [t('name'), [c.first_name, c.last_name].filter(Boolean).join(' ')], [t('company'), c.company],
    [t('language'), languageOf(c)], [t('country'), c.country], [t('time_zone'), c.time_zone], [t('city'), c.city], [t('phone'), c.phone],
    [t('tags'), c.tags.length ? c.tags.map((tag) => [badge(tag), ' ']) : '–'], [t('created'), when(c.created_at)],
  ])),
  section(t('tags'), tags),
  section(t('timeline'), pagedTable({
    path: `/api/v2/contacts/${id}/events`,
    params: scoped(),
    columns: [
      { label: t('when'), value: (r) => when(r.occurred_at) }, { label: t('event'), value: (r) => badge(r.type) },
      { label: t('campaign'), value: (r) => (r.campaign_id ? h('a', { href: `#/campaigns/${r.campaign_id}` }, t('open')) : '–') },
      { label: t('details'), value: (r) => details(r.metadata) },
    ],
  })));
}

/// Lines in a file (a CSV's rows plus its header), counted as it streams.
async function countLines(file) {
  let lines = 0;
  let last = 10;
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (let i = 0; i < value.length; i += 1) if (value[i] === 10) lines += 1;
    if (value.length) last = value[value.length - 1];
  }
  return last === 10 ? lines : lines + 1;
}

export async function imports() {
  if (needsTenant()) return chooseTenantFirst(t('imports'));
  const bar = progress(0, 1, t('import_progress'));
  const status = h('p', { id: 'import-status', class: 'muted' });
  const watch = h('div', { id: 'import-watch', hidden: true }, bar, status);
  const uploader = form({
    fields: [
      { name: 'file', label: t('csv_file'), type: 'file', accept: '.csv,text/csv', required: true, help: t('csv_help') },
      { name: 'source', label: t('source_slug') },
    ],
    submitLabel: t('import'),
    submit: async (values) => {
      if (!values.file) throw new Error(t('choose_file'));
      watch.hidden = false;
      const expected = Math.max(1, (await countLines(values.file)) - 1);
      status.textContent = t('uploading');
      const started = await upload('/api/v2/contacts/import', values.file, scoped({ filename: values.file.name, source: values.source }),
        (sent, total) => setProgress(bar, sent, total));
      await follow(started, expected, bar, status);
    },
    onDone: () => drawRecent(),
  });
  const recent = h('div', { id: 'recent-imports' });
  const drawRecent = () => recent.replaceChildren(pagedTable({
      path: '/api/v2/imports',
      params: scoped(),
      columns: [
        { label: t('file'), key: 'filename' }, { label: t('status'), value: (r) => badge(r.status) },
        { label: t('lines'), value: (r) => num(r.total) }, { label: t('created_n'), value: (r) => num(r.created) },
        { label: t('updated_n'), value: (r) => num(r.updated) }, { label: t('duplicates'), value: (r) => num(r.duplicates) },
        { label: t('rejected'), value: (r) => num(r.rejected) },
        { label: t('errors'), value: (r) => (r.rejected ? errorReport(r) : '–') },
        { label: t('when'), value: (r) => when(r.created_at) },
      ],
    }));
  drawRecent();
  return h('div', {}, header(t('imports')), section(t('import_csv'), uploader, watch), section(t('recent_imports'), recent));
}

function errorReport(row) {
  return action(t('download'), async () => {
    const response = await api('GET', row.errors_url, { params: scoped(), raw: true });
    const link = h('a', { href: URL.createObjectURL(await response.blob()), download: `import-${row.id}-errors.csv` });
    document.body.append(link);
    link.click();
    link.remove();
  }, { kind: 'small' });
}

/// Polls an import until it ends, moving the bar with the lines read.
async function follow(started, expected, bar, status) {
  let current = started;
  for (;;) {
    setProgress(bar, Math.min(current.total, expected), expected);
    status.textContent = t('import_state', { status: current.status, total: num(current.total), expected: num(expected),
      created: num(current.created), updated: num(current.updated), rejected: num(current.rejected) });
    if (current.status === 'done' || current.status === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    current = await get(`/api/v2/imports/${current.id}`, scoped());
  }
  if (current.status === 'done') setProgress(bar, expected, expected);
  bar.dataset.done = current.status;
  if (current.rejected) status.append(' ', errorReport(current));
  if (current.error) status.append(h('span', { class: 'form-error' }, ` ${current.error}`));
}

function segmentEditor(existing) {
  const count = h('strong', { id: 'segment-count' }, '–');
  const shown = h('pre', { class: 'code' });
  const error = h('p', { class: 'form-error', hidden: true });
  let timer = null;
  const recount = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const expression = build.expression();
      shown.textContent = JSON.stringify(expression, null, 2);
      if (!expression) {
        count.textContent = '–';
        error.hidden = true;
        return;
      }
      try {
        const answer = await post('/api/v2/segments/count', owned({ expression }));
        count.textContent = num(answer.count);
        error.hidden = true;
      } catch (e) {
        count.textContent = '–';
        error.hidden = false;
        error.textContent = errorText(e);
      }
    }, 300);
  };
  const build = builder(existing && existing.expression, recount);
  const name = h('input', { id: 'segment-name', value: existing ? existing.name : '', required: true });
  const save = action(t('save'), async () => {
    const body = owned({ name: name.value.trim(), expression: build.expression() });
    const saved = existing ? await patch(`/api/v2/segments/${existing.id}`, body) : await post('/api/v2/segments', body);
    notice(t('saved'));
    go(`/segments/${saved.id}`);
  }, { kind: 'primary' });
  recount();
  return h('div', {}, h('div', { class: 'field' }, h('label', { for: 'segment-name' }, t('name')), name), build,
    h('p', {}, t('live_count'), ' ', count), error, h('details', {}, h('summary', {}, t('expression')), shown),
    h('div', { class: 'form-actions' }, save));
}

export async function segments() {
  if (needsTenant()) return chooseTenantFirst(t('segments'));
  return h('div', {}, header(t('segments')), section(t('new_segment'), segmentEditor(null)),
    section(null, pagedTable({
      path: '/api/v2/segments',
      params: scoped(),
      columns: [{ label: t('name'), key: 'name' }, { label: t('updated'), value: (r) => when(r.updated_at) }],
      onRow: (r) => go(`/segments/${r.id}`),
    })));
}

export async function segment({ id }) {
  const found = await get(`/api/v2/segments/${id}`, scoped());
  return h('div', {}, header(found.name,
    action(t('delete'), async () => { await del(`/api/v2/segments/${id}`, scoped()); go('/segments'); }, { kind: 'danger', confirmText: t('confirm_delete') })),
  section(t('edit'), segmentEditor(found)),
  section(t('preview'), pagedTable({
    path: `/api/v2/segments/${id}/preview`,
    params: scoped(),
    columns: [{ label: t('email'), key: 'email' }, { label: t('status'), value: (r) => badge(r.status) }, { label: t('language'), key: 'language' }],
    onRow: (r) => go(`/contacts/${r.id}`),
  })));
}

export async function suppressions(_, query) {
  if (needsTenant()) return chooseTenantFirst(t('suppressions'));
  const add = form({
    fields: [{ name: 'email', label: t('email'), type: 'email', required: true }, { name: 'reason', label: t('reason'), placeholder: 'manual' }],
    submitLabel: t('suppress'),
    submit: (values) => post('/api/v2/suppressions', owned(values)),
    onDone: () => refresh(),
    compact: true,
  });
  return h('div', {}, header(t('suppressions')), section(t('add_suppression'), add),
    section(null, pagedTable({
      path: '/api/v2/suppressions',
      params: scoped({ reason: query.reason }),
      columns: [
        { label: t('email'), value: (r) => r.email || h('code', {}, `${r.email_hash.slice(0, 16)}…`) },
        { label: t('reason'), value: (r) => badge(r.reason) }, { label: t('source'), key: 'source' },
        { label: t('when'), value: (r) => when(r.created_at) },
        { label: '', value: (r) => action(t('remove'), async () => { await del(`/api/v2/suppressions/${r.id}`, scoped()); refresh(); }, { kind: 'small danger', confirmText: t('confirm_unsuppress') }) },
      ],
    })));
}



export async function tags() {
  if (needsTenant()) return chooseTenantFirst(t('tags'));
  return h('div', {}, header(t('tags')),
    section(null, pagedTable({
      path: '/api/v2/tags',
      params: scoped(),
      columns: [
        { label: t('tag'), value: (r) => badge(r.slug) }, { label: t('name'), key: 'name' },
        { label: t('category'), key: 'category' },
        { label: '', value: (r) => h('a', { href: `#/contacts?tag=${encodeURIComponent(r.slug)}` }, t('contacts')) },
      ],
    })));
}
