// Templates: the list, and an editor with a live preview in each of the nine languages
// (right to left for Arabic), the fallback chain each language takes, and versions. A
// template is written in HTML or built from blocks (`template_designer.js`); either way it
// can be sent as a test and copied into another language.

import { csrf, del, get, post, put } from '../api.js';
import { action, badge, stateLabel, chooseTenantFirst, facts, form, header, notice, pagedTable, section } from '../components.js';
import { h, replace, when } from '../dom.js';
import { t } from '../i18n.js';
import { go, refresh } from '../nav.js';
import { isAdmin, owned, scoped, session } from '../session.js';
import { designer, starterDesign } from './template_designer.js';

export const LANGUAGES = ['fr', 'en', 'es', 'de', 'pt', 'ru', 'zh', 'hi', 'ar'];

export async function list(_, query) {
  if (isAdmin() && !session.tenant) return chooseTenantFirst(t('templates'));
  const create = form({
    fields: [
      { name: 'name', label: t('name'), required: true },
      { name: 'language', label: t('language'), type: 'select', options: LANGUAGES.map((l) => [l, t(`lang_${l}`)]), value: 'en' },
      { name: 'category', label: t('category'), placeholder: 'welcome' },
      { name: 'subject', label: t('subject'), required: true },
      { name: 'body', label: t('design_start_from'), type: 'select', value: 'blocks',
        options: [['blocks', t('design_start_blocks')], ['html', t('design_start_html')]] },
      { name: 'html', label: t('html'), type: 'textarea', rows: 8, help: t('design_html_help'), value: '<p>Hello [FNAME|friend]</p>\n<p><a href="[UNSUBSCRIBE_URL]">Unsubscribe</a></p>' },
    ],
    submitLabel: t('create_template'),
    submit: ({ body, html, ...values }) => post('/api/v2/templates', owned(body === 'blocks'
      ? { ...values, design: starterDesign(values.language || 'en') }
      : { ...values, html })),
    onDone: (tpl) => go(`/templates/${tpl.id}`),
  });
  const filter = h('select', { 'aria-label': t('language') }, h('option', { value: '' }, t('all_languages')),
    LANGUAGES.map((l) => h('option', { value: l, selected: query.language === l }, t(`lang_${l}`))));
  filter.addEventListener('change', () => go(filter.value ? `/templates?language=${filter.value}` : '/templates'));
  return h('div', {}, header(t('templates'), filter),
    section(null, pagedTable({
      path: '/api/v2/templates',
      params: scoped({ language: query.language, category: query.category }),
      columns: [
        { label: t('name'), key: 'name' }, { label: t('language'), value: (r) => t(`lang_${r.language}`) },
        { label: t('category'), key: 'category' }, { label: t('subject'), key: 'subject' },
        { label: t('version'), key: 'version' }, { label: t('status'), value: (r) => badge(r.active ? 'active' : 'inactive') },
        { label: t('updated'), value: (r) => when(r.updated_at) },
      ],
      onRow: (r) => go(`/templates/${r.id}`),
    })),
    section(t('new_template'), create));
}

/// Posts the draft into the preview frame: a form, so the answer is a document with its
/// own policy (the e-mail's styles apply there, never in the admin page).
function postPreview(frameName, fields) {
  const f = h('form', { method: 'post', action: '/admin/preview', target: frameName, class: 'offscreen' },
    Object.entries({ ...fields, csrf_token: csrf() }).map(([name, value]) =>
      h('textarea', { name }, value ?? '')));
  document.body.append(f);
  f.submit();
  f.remove();
}

export async function editor({ id }) {
  const tpl = await get(`/api/v2/templates/${id}`);
  const rtl = (lang) => (lang === 'ar' ? 'rtl' : 'ltr');
  const subject = h('input', { id: 'tpl-subject', value: tpl.subject, dir: rtl(tpl.language) });
  const html = h('textarea', { id: 'tpl-html', class: 'code', rows: 18, dir: rtl(tpl.language) }, tpl.html);
  // Built from blocks: the designer holds the body, the HTML is the server's rendering.
  let blocks = null;
  const body = h('div', { id: 'tpl-body' });
  const text = h('textarea', { id: 'tpl-text', class: 'code', rows: 6, dir: rtl(tpl.language) }, tpl.text || '');
  const frame = h('iframe', { name: 'preview-frame', id: 'preview-frame', class: 'preview-frame', sandbox: '', title: t('preview') });
  const chain = h('p', { id: 'fallback', class: 'muted' });
  let language = tpl.language;
  let timer = null;
  const showPreview = async () => {
    chain.textContent = '';
    let target = tpl;
    if (language !== tpl.language) {
      try {
        const chosen = await get('/api/v2/templates/select', scoped({ language, category: tpl.category || undefined }));
        target = chosen.template;
        chain.textContent = t('fallback_shows', { lang: t(`lang_${language}`), name: target.name, used: t(`lang_${target.language}`), level: t(`level_${chosen.level}`) });
      } catch (e) {
        chain.textContent = t('no_template_for', { lang: t(`lang_${language}`) });
        return;
      }
    } else {
      chain.textContent = t('preview_draft');
    }
    const own = { subject: subject.value, text: text.value };
    if (blocks) own.design = JSON.stringify(blocks.design());
    else own.html = html.value;
    const draft = target.id === tpl.id ? own : {};
    postPreview('preview-frame', { id: target.id, ...draft });
  };
  const schedule = () => { clearTimeout(timer); timer = setTimeout(showPreview, 500); };
  const useBlocks = (design) => {
    blocks = designer(design, { language: tpl.language, onChange: schedule });
    replace(body, blocks.el,
      h('details', { class: 'rendered-html' }, h('summary', {}, t('design_rendered_html')), h('pre', { class: 'code' }, tpl.design ? tpl.html : '')));
  };
  const useHtml = () => {
    blocks = null;
    replace(body, h('div', { class: 'field' }, h('label', { for: 'tpl-html' }, t('html')), html),
      h('div', { class: 'form-actions' }, h('button', { type: 'button', id: 'use-blocks', onclick: () => {
        if (window.confirm(t('design_replace_html'))) { useBlocks(starterDesign(tpl.language)); schedule(); }
      } }, t('design_use_blocks'))));
  };
  if (tpl.design) useBlocks(tpl.design); else useHtml();
  [subject, html, text].forEach((el) => el.addEventListener('input', schedule));
  const langBar = h('div', { class: 'tabs', role: 'tablist', id: 'preview-languages' }, LANGUAGES.map((l) => {
    const b = h('button', { type: 'button', role: 'tab', 'aria-selected': l === language ? 'true' : 'false', dataset: { lang: l } }, l.toUpperCase());
    b.addEventListener('click', () => {
      language = l;
      langBar.querySelectorAll('button').forEach((o) => o.setAttribute('aria-selected', o === b ? 'true' : 'false'));
      showPreview();
    });
    return b;
  }));
  const errors = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = action(t('save_version'), async () => {
    errors.hidden = true;
    try {
      const change = { subject: subject.value, text: text.value || undefined };
      if (blocks) change.design = blocks.design(); else change.html = html.value;
      await put(`/api/v2/templates/${id}`, change);
      notice(t('saved'));
      refresh();
    } catch (e) {
      errors.hidden = false;
      errors.textContent = e.message;
      if (blocks && e.field) blocks.showError(e.field, e.message);
      throw e;
    }
  }, { kind: 'primary' });
  // A test of the template as saved, to an address given here.
  const testTo = h('input', { id: 'test-email', type: 'email', placeholder: 'qa@example.com', 'aria-label': t('design_test_address') });
  const testSend = action(t('design_send_test'), async () => {
    const sent = await post(`/api/v2/templates/${id}/test`, { emails: [testTo.value.trim()] });
    notice(t('design_test_queued', { email: sent[0].email, state: stateLabel(sent[0].state) }));
  });
  testSend.id = 'send-test';
  // A copy in another language, with the same blocks or HTML, to translate.
  const copyLang = h('select', { id: 'copy-language', 'aria-label': t('language') },
    LANGUAGES.filter((l) => l !== tpl.language).map((l) => h('option', { value: l }, t(`lang_${l}`))));
  const copy = action(t('design_copy_to'), async () => {
    const language = copyLang.value;
    const copied = await post('/api/v2/templates', {
      tenant_id: tpl.tenant_id, name: `${tpl.name}_${language}`, language, category: tpl.category || undefined,
      subject: subject.value, text: text.value || undefined, from_name: tpl.from_name || undefined,
      from_email: tpl.from_email || undefined, reply_to: tpl.reply_to || undefined, variables: tpl.variables,
      ...(blocks ? { design: blocks.design() } : { html: html.value }),
    });
    go(`/templates/${copied.id}`);
  });
  copy.id = 'copy-to-language';
  setTimeout(showPreview, 0);
  return h('div', {}, header(`${tpl.name} · ${t(`lang_${tpl.language}`)}`,
    action(t('delete'), async () => { await del(`/api/v2/templates/${id}`); go('/templates'); }, { kind: 'danger', confirmText: t('confirm_delete') })),
  section(null, facts([[t('version'), tpl.version], [t('category'), tpl.category], [t('language'), t(`lang_${tpl.language}`)],
    [t('variables'), h('code', {}, '[FNAME|fallback] [LNAME] [EMAIL] [UNSUBSCRIBE_URL] …')]])),
  h('div', { class: 'split wide-left' },
    section(t('edit'), errors,
      h('div', { class: 'field' }, h('label', { for: 'tpl-subject' }, t('subject')), subject),
      body,
      h('div', { class: 'field' }, h('label', { for: 'tpl-text' }, t('text_version')), text),
      h('div', { class: 'form-actions', id: 'tpl-save-row' }, save)),
    section(t('preview'), langBar, chain, frame,
      h('h3', {}, t('design_send_test')), h('div', { class: 'inline-form' }, testTo, testSend),
      h('h3', {}, t('design_copy_to')), h('div', { class: 'inline-form' }, copyLang, copy))),
  section(t('versions'), pagedTable({
    path: `/api/v2/templates/${id}/versions`,
    columns: [
      { label: t('version'), key: 'version' }, { label: t('when'), value: (r) => when(r.created_at) },
      { label: t('subject'), value: (r) => r.template.subject },
    ],
  })));
}
