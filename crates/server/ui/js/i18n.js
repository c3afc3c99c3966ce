// Interface text in French and English: the browser's language by default, a switch in
// the header, the choice kept in this browser. Dictionaries are /admin/i18n/<lang>.json;
// a Rust test checks that both hold the same keys and every key the code asks for.

export const LANGS = ['fr', 'en'];
const dicts = {};
let current = 'en';

function preferred() {
  const saved = localStorage.getItem('ee.lang');
  if (LANGS.includes(saved)) return saved;
  for (const lang of navigator.languages || [navigator.language || 'en']) {
    const base = String(lang).slice(0, 2).toLowerCase();
    if (LANGS.includes(base)) return base;
  }
  return 'en';
}

async function load(lang) {
  if (!dicts[lang]) {
    const response = await fetch(`/admin/i18n/${lang}.json`, { credentials: 'same-origin' });
    dicts[lang] = await response.json();
  }
}

export async function init() {
  current = preferred();
  await Promise.all([load('en'), load(current)]);
  document.documentElement.lang = current;
}

export async function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  await load(lang);
  current = lang;
  localStorage.setItem('ee.lang', lang);
  document.documentElement.lang = lang;
}

export function lang() {
  return current;
}

/// Whether `key` has a text (in the current language or English).
export function has(key) {
  return Boolean((dicts[current] && key in dicts[current]) || (dicts.en && key in dicts.en));
}

/// The text of `key` in the current language ({name} replaced from `vars`).
export function t(key, vars) {
  const text = (dicts[current] && dicts[current][key]) ?? (dicts.en && dicts.en[key]) ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`)) : text;
}
