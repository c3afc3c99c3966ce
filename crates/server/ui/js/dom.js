// Building the page: elements from data, text always as text (never parsed as HTML), so
// nothing a contact, a tenant or a template puts in a field can run in the admin's page.

import { lang } from './i18n.js';

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name === 'value' && 'value' in el) {
      el.value = value;
    } else if (name === 'checked' || name === 'selected' || name === 'disabled') {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

/// The formats of the interface's language (not the browser's): `1 000` and `05/12/2026
/// 14:03` in French, `1,000` and `5 Dec 2026, 14:03` in English.
export function locale() {
  return lang() === 'fr' ? 'fr-FR' : 'en-GB';
}

/// A number with the interface language's digit grouping.
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toLocaleString(locale(), { maximumFractionDigits: digits });
}

export function pct(rate) {
  if (rate === null || rate === undefined) return '–';
  return `${(rate * 100).toLocaleString(locale(), { maximumFractionDigits: 2 })} %`;
}

/// Epoch milliseconds, or an RFC 3339 string, as local date and time.
export function when(value) {
  if (value === null || value === undefined || value === '') return '–';
  const date = typeof value === 'number' ? new Date(value) : new Date(String(value));
  return Number.isNaN(date.getTime())
    ? String(value)
    : date.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'short' });
}
