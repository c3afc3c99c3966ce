// The pieces pages are made of: paged tables, forms that show the API's errors beside
// the fields they name, copy buttons, charts, notices.

import { ApiError, get } from './api.js';
import { append, h, replace } from './dom.js';
import { has, t } from './i18n.js';

/// A heading with actions on its right.
export function header(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

/// A page that needs a tenant chosen in the header (an admin viewing all tenants).
export function chooseTenantFirst(title) {
  return h('div', {}, header(title), section(null, h('p', { class: 'muted' }, t('choose_tenant_first'))));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, children);
}

export function notice(message, kind = 'info') {
  const box = document.getElementById('toasts') || document.body.appendChild(h('div', { id: 'toasts', role: 'status' }));
  const item = h('div', { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export function errorText(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return String(error && error.message ? error.message : error);
}

/// A domain's DNS state as a badge; "unknown" says why and what to do.
export function dnsBadge(ok) {
  if (ok === null || ok === undefined) {
    return h('span', { class: 'dns-state' }, badge('unknown'), ' ', h('small', { class: 'muted hint' }, t('dns_unknown_hint')));
  }
  return badge(ok ? 'ok' : 'fail');
}

/// Why a contact's address was judged so, in words (the code kept as the tooltip).
export function reasonText(reason) {
  return has(`vr_${reason}`) ? h('span', { title: reason }, t(`vr_${reason}`)) : reason;
}

/** An event's details as words (`class: hard · reply: 550 5.1.1 …`), not JSON: each
 * field by its label when the interface has one, nested values flattened, empty ones
 * left out. */
export function details(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value !== 'object') return String(value);
  const parts = [];
  const walk = (obj, prefix) => {
    for (const [key, v] of Object.entries(obj)) {
      if (v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length)) continue;
      const name = prefix ? `${prefix} ${key}` : key;
      if (typeof v === 'object' && !Array.isArray(v)) walk(v, name);
      else parts.push(`${has(name) ? t(name) : name.replace(/_/g, ' ')}: ${Array.isArray(v) ? v.join(', ') : v}`);
    }
  };
  walk(value, '');
  return parts.length ? parts.join(' · ') : '–';
}

/** A server's reply: its text already starts with the code (`250 2.0.0 OK`); older
 * rows may hold the text alone, which gets the code in front. */
export function replyText(code, reply) {
  if (!code) return null;
  const text = (reply || '').trim();
  return text.startsWith(String(code)) ? text : `${code} ${text}`.trim();
}

/// A state or kind as the interface's language says it (the API's value when it has no
/// text of its own: a tag, a name).
export function stateLabel(value) {
  return has(`st_${value}`) ? t(`st_${value}`) : value;
}

/// A state or kind as a coloured label, in the interface's language (its class keeps
/// the API's value).
export function badge(value) {
  const text = value === null || value === undefined ? '–' : String(value);
  const label = stateLabel(text);
  return h('span', { class: `badge b-${text.replace(/[^a-z_]/gi, '')}`, title: text }, label);
}

export function button(label, onclick, kind = '') {
  return h('button', { type: 'button', class: kind, onclick }, label);
}

/// A button that runs an API call, shows its error, and disables itself meanwhile.
export function action(label, run, { kind = '', confirmText } = {}) {
  const el = button(label, async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    el.disabled = true;
    try {
      await run();
    } catch (error) {
      notice(errorText(error), 'error');
    } finally {
      el.disabled = false;
    }
  }, kind);
  return el;
}

export function copyButton(text, label) {
  const el = button(label || t('copy'), async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Not a secure context (plain HTTP on a remote host): select and copy.
      const area = h('textarea', { class: 'offscreen' }, text);
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    el.textContent = t('copied');
    setTimeout(() => { el.textContent = label || t('copy'); }, 1500);
  }, 'small');
  return el;
}

/// A table of `columns` ({label, value(row) → text or node}) over a paged list route
/// (`{items, next_cursor}`): the first page at once, the next ones on demand, so a
/// list of a million rows never loads at once.
export function pagedTable({ path, params = {}, columns, onRow, empty, pageSize = 50 }) {
  const body = h('tbody');
  const more = button(t('load_more'), () => load(), 'secondary');
  const status = h('p', { class: 'muted' });
  let cursor = null;
  let count = 0;
  async function load() {
    more.disabled = true;
    try {
      const page = await get(path, { ...params, limit: pageSize, cursor });
      for (const row of page.items) body.append(tableRow(columns, row, onRow));
      count += page.items.length;
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
      status.textContent = count === 0 ? (empty || t('nothing_yet')) : t('rows_shown', { count });
    } catch (error) {
      status.textContent = errorText(error);
    } finally {
      more.disabled = false;
    }
  }
  const table = h('div', { class: 'table-wrap' },
    h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))), body),
    status, more);
  more.hidden = true;
  load();
  return table;
}

/// A table over rows already in hand.
export function table(columns, rows, onRow) {
  return h('div', { class: 'table-wrap' },
    h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((row) => tableRow(columns, row, onRow)))),
    rows.length ? null : h('p', { class: 'muted' }, t('nothing_yet')));
}

function tableRow(columns, row, onRow) {
  const tr = h('tr', {}, columns.map((c) => {
    const value = c.value ? c.value(row) : row[c.key];
    return h('td', { 'data-label': c.label }, value === null || value === undefined ? '–' : value);
  }));
  if (onRow) {
    tr.classList.add('link');
    tr.tabIndex = 0;
    tr.addEventListener('click', () => onRow(row));
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRow(row); });
  }
  return tr;
}

/// A form over `fields` ({name, label, type, options, value, required, help, rows}).
/// `submit(values)` calls the API; a validation error is shown beside the field it
/// names (its first segment: `audience.segments` shows at `audience`), others on top.
export function form({ fields, submit, submitLabel, onDone, compact }) {
  const errors = {};
  const top = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const inputs = {};
  const rows = fields.map((field) => {
    const id = `f-${field.name}-${Math.random().toString(36).slice(2, 8)}`;
    const input = control(field, id);
    inputs[field.name] = input;
    errors[field.name] = h('span', { class: 'field-error', id: `${id}-error`, hidden: true });
    input.setAttribute('aria-describedby', `${id}-error`);
    return h('div', { class: `field ${field.type === 'checkbox' ? 'check' : ''}`, dataset: { field: field.name } },
      h('label', { for: id }, field.label, field.required ? ' *' : ''),
      input, field.help ? h('small', { class: 'muted' }, field.help) : null, errors[field.name]);
  });
  const submitButton = h('button', { type: 'submit', class: 'primary' }, submitLabel || t('save'));
  const el = h('form', { class: compact ? 'form compact' : 'form', novalidate: true }, top, rows, h('div', { class: 'form-actions' }, submitButton));
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    top.hidden = true;
    Object.values(errors).forEach((e) => { e.hidden = true; e.textContent = ''; });
    el.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
    submitButton.disabled = true;
    try {
      const result = await submit(values(fields, inputs));
      if (onDone) await onDone(result);
    } catch (error) {
      showErrors(error, errors, inputs, top);
    } finally {
      submitButton.disabled = false;
    }
  });
  el.inputs = inputs;
  return el;
}

function control(field, id) {
  const common = { id, name: field.name, required: field.required, placeholder: field.placeholder };
  switch (field.type) {
    case 'custom':
      // A control of the page's own (a list editor): `field.control` is its element and
      // `field.read()` its value.
      field.control.id = id;
      return field.control;
    case 'select':
      return h('select', common, (field.options || []).map(([value, label]) =>
        h('option', { value, selected: String(field.value ?? '') === String(value) }, label)));
    case 'multiselect':
      return h('select', { ...common, multiple: true, size: Math.max(3, Math.min(6, (field.options || []).length)) },
        (field.options || []).map(([value, label]) =>
          h('option', { value, selected: (field.value || []).includes(value) }, label)));
    case 'textarea':
    case 'json':
      return h('textarea', { ...common, rows: field.rows || 6, class: field.type === 'json' ? 'code' : null,
        value: field.type === 'json' && field.value !== undefined ? JSON.stringify(field.value, null, 2) : field.value });
    case 'checkbox':
      return h('input', { ...common, type: 'checkbox', checked: field.value });
    case 'file':
      return h('input', { ...common, type: 'file', accept: field.accept });
    default:
      return h('input', { ...common, type: field.type || 'text', value: field.value, step: field.step, min: field.min });
  }
}

function values(fields, inputs) {
  const out = {};
  for (const field of fields) {
    const input = inputs[field.name];
    let value;
    if (field.type === 'custom') value = field.read();
    else if (field.type === 'checkbox') value = input.checked;
    else if (field.type === 'multiselect') value = [...input.selectedOptions].map((o) => o.value);
    else if (field.type === 'file') value = input.files[0] || null;
    else if (field.type === 'number') value = input.value === '' ? undefined : Number(input.value);
    else if (field.type === 'json') {
      if (input.value.trim() === '') value = undefined;
      else {
        try { value = JSON.parse(input.value); } catch (e) {
          throw Object.assign(new ApiError(422, { error: { code: 'validation_failed', message: t('invalid_json'), field: field.name } }), {});
        }
      }
    } else value = input.value.trim() === '' ? undefined : input.value;
    if (field.name.includes('.')) {
      const [outer, inner] = field.name.split('.', 2);
      if (value !== undefined) out[outer] = { ...(out[outer] || {}), [inner]: value };
    } else if (value !== undefined) {
      out[field.name] = value;
    }
  }
  return out;
}

function showErrors(error, errors, inputs, top) {
  const byField = error instanceof ApiError ? error.fieldErrors() : {};
  let placed = false;
  for (const [field, why] of Object.entries(byField)) {
    const name = [field, field.split(/[.[]/)[0]].find((n) => n in errors)
      || Object.keys(errors).find((n) => n.startsWith(`${field.split(/[.[]/)[0]}.`));
    if (!name) continue;
    errors[name].hidden = false;
    errors[name].textContent = `${field}: ${why}`;
    inputs[name].classList.add('invalid');
    placed = true;
  }
  if (!placed || !(error instanceof ApiError) || error.code !== 'validation_failed') {
    top.hidden = false;
    top.textContent = errorText(error);
  }
  const first = Object.values(inputs).find((i) => i.classList.contains('invalid'));
  if (first) first.focus();
}

/// A dialog holding `content`, closed with Escape or its button.
export function dialog(title, content) {
  const el = h('dialog', { class: 'dialog' }, h('h2', {}, title), content,
    h('div', { class: 'form-actions' }, button(t('close'), () => el.close(), 'secondary')));
  el.addEventListener('close', () => el.remove());
  document.body.append(el);
  el.showModal();
  return el;
}

/// Key-value pairs.
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) =>
    [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '–' : v)]));
}

export function tabs(items) {
  const panel = h('div', { class: 'tab-panel' });
  const bar = h('div', { class: 'tabs', role: 'tablist' });
  const buttons = items.map(([label, render], i) => {
    const b = h('button', { type: 'button', role: 'tab', 'aria-selected': i === 0 ? 'true' : 'false' }, label);
    b.addEventListener('click', () => {
      buttons.forEach((o) => o.setAttribute('aria-selected', 'false'));
      b.setAttribute('aria-selected', 'true');
      replace(panel, render());
    });
    return b;
  });
  append(bar, buttons);
  replace(panel, items.length ? items[0][1]() : null);
  return h('div', {}, bar, panel);
}

export function progress(value, max, label) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  return h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': max, 'aria-valuenow': value, 'aria-label': label || '' },
    h('div', { class: 'bar', dataset: { ratio: ratio.toFixed(3) } }));
}

export function setProgress(el, value, max) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  el.setAttribute('aria-valuenow', value);
  el.setAttribute('aria-valuemax', max);
  el.firstChild.dataset.ratio = ratio.toFixed(3);
  sizeBars(el);
}

/// Widths from data attributes: the CSP forbids inline styles in markup, but the CSSOM
/// (element.style) is allowed.
export function sizeBars(root) {
  root.querySelectorAll('[data-ratio]').forEach((bar) => { bar.style.width = `${Number(bar.dataset.ratio) * 100}%`; });
  if (root.dataset && root.dataset.ratio) root.style.width = `${Number(root.dataset.ratio) * 100}%`;
}

