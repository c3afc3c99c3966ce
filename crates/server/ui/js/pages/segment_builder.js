// The segment builder: rules joined by AND or OR, each a tag, a contact field, a custom
// field or an engagement (opened, clicked, received, soft-bounced, within days, of a
// campaign, at least N times), optionally negated. It reads an expression the API gave
// and writes one back as the API takes it.

import { h } from '../dom.js';
import { t } from '../i18n.js';

const FIELDS = ['language', 'country', 'status', 'source', 'validation', 'email', 'category', 'city', 'created_at', 'engaged_at'];
const TEXT_OPS = ['eq', 'neq', 'in', 'not_in', 'contains', 'starts_with', 'ends_with', 'is_null', 'not_null'];
const FIELD_OPS = [...TEXT_OPS, 'before', 'after'];
const CUSTOM_OPS = [...TEXT_OPS, 'gt', 'gte', 'lt', 'lte'];
const ACTIVITIES = ['opened', 'clicked', 'received', 'soft_bounced'];
const KINDS = ['tag', 'field', 'custom', 'engagement'];

const options = (values, label) => values.map((v) => h('option', { value: v }, label(v)));

/// The kind of a rule the API gave.
function kindOf(rule) {
  if ('tag' in rule) return 'tag';
  if ('custom' in rule) return 'custom';
  if ('engagement' in rule) return 'engagement';
  return 'field';
}

/// A comparison's value as the API takes it: a list for in/not_in, a number for the
/// numeric operators when it reads as one, none for is_null/not_null.
function operand(op, text) {
  if (op === 'is_null' || op === 'not_null') return undefined;
  if (op === 'in' || op === 'not_in') return text.split(',').map((s) => s.trim()).filter(Boolean);
  const trimmed = text.trim();
  if (['gt', 'gte', 'lt', 'lte'].includes(op) && trimmed !== '' && !Number.isNaN(Number(trimmed))) return Number(trimmed);
  return trimmed;
}

function ruleRow(rule, onChange) {
  const kind = h('select', { 'aria-label': t('rule_kind') }, options(KINDS, (k) => t(k === 'custom' ? 'custom_field' : k)));
  const field = h('select', { 'aria-label': t('field') }, options(FIELDS, (f) => f));
  const custom = h('input', { 'aria-label': t('custom_field_name'), placeholder: t('custom_field_name'), maxlength: 64 });
  const op = h('select', { 'aria-label': t('operator') });
  const value = h('input', { class: 'rule-value', 'aria-label': t('value'), placeholder: t('value') });
  const activity = h('select', { 'aria-label': t('engagement') }, options(ACTIVITIES, (a) => t(`activity_${a}`)));
  const days = h('input', { type: 'number', min: 1, max: 3650, 'aria-label': t('within_days'), placeholder: t('within_days') });
  const campaign = h('input', { 'aria-label': t('campaign_id'), placeholder: t('campaign_id') });
  const atLeast = h('input', { type: 'number', min: 1, max: 1000, 'aria-label': t('at_least'), placeholder: t('at_least') });
  const negate = h('input', { type: 'checkbox', 'aria-label': t('not') });
  const remove = h('button', { type: 'button', class: 'small danger', 'aria-label': t('remove') }, '×');
  const row = h('div', { class: 'rule actions' }, h('label', {}, negate, ' ', t('not')), kind, field, custom, op,
    value, activity, days, campaign, atLeast, remove);
  const setOps = () => {
    const wanted = kind.value === 'custom' ? CUSTOM_OPS : FIELD_OPS;
    const current = op.value;
    op.replaceChildren(...options(wanted, (o) => t(`op_${o}`)));
    op.value = wanted.includes(current) ? current : 'eq';
  };
  const sync = () => {
    const k = kind.value;
    field.hidden = k !== 'field';
    custom.hidden = k !== 'custom';
    op.hidden = k === 'tag' || k === 'engagement';
    value.hidden = k === 'engagement' || ((k === 'field' || k === 'custom') && (op.value === 'is_null' || op.value === 'not_null'));
    [activity, days, campaign, atLeast].forEach((el) => { el.hidden = k !== 'engagement'; });
  };
  setOps();
  if (rule) {
    const inner = rule.not || rule;
    negate.checked = Boolean(rule.not);
    kind.value = kindOf(inner);
    setOps();
    if (kind.value === 'tag') value.value = inner.tag;
    else if (kind.value === 'engagement') {
      activity.value = inner.engagement;
      days.value = inner.days ?? '';
      campaign.value = inner.campaign ?? '';
      atLeast.value = inner.at_least ?? '';
    } else {
      if (kind.value === 'custom') custom.value = inner.custom; else field.value = inner.field;
      op.value = inner.op;
      value.value = Array.isArray(inner.value) ? inner.value.join(', ') : String(inner.value ?? '');
    }
  }
  sync();
  kind.addEventListener('change', () => { setOps(); sync(); onChange(); });
  [field, op, activity, negate].forEach((el) => el.addEventListener('change', () => { sync(); onChange(); }));
  [value, custom, days, campaign, atLeast].forEach((el) => el.addEventListener('input', onChange));
  remove.addEventListener('click', () => { row.remove(); onChange(); });
  // The rule as the API takes it, or null while it is incomplete.
  row.rule = () => {
    let out;
    if (kind.value === 'tag') {
      if (!value.value.trim()) return null;
      out = { tag: value.value.trim() };
    } else if (kind.value === 'engagement') {
      out = { engagement: activity.value };
      if (days.value) out.days = Number(days.value);
      if (campaign.value.trim()) out.campaign = campaign.value.trim();
      if (atLeast.value) out.at_least = Number(atLeast.value);
    } else {
      out = kind.value === 'custom' ? { custom: custom.value.trim(), op: op.value } : { field: field.value, op: op.value };
      if (kind.value === 'custom' && !out.custom) return null;
      const v = operand(op.value, value.value);
      if (v !== undefined) {
        if (Array.isArray(v) ? v.length === 0 : v === '') return null;
        out.value = v;
      }
    }
    return negate.checked ? { not: out } : out;
  };
  return row;
}

export function builder(initial, onChange) {
  const rows = h('div', { class: 'rules' });
  const joiner = h('select', { 'aria-label': t('match') }, h('option', { value: 'and' }, t('match_all')), h('option', { value: 'or' }, t('match_any')));
  const add = (rule) => rows.append(ruleRow(rule, onChange));
  const top = initial && (initial.and || initial.or);
  if (top) { joiner.value = initial.or ? 'or' : 'and'; top.forEach(add); } else if (initial) add(initial); else add();
  joiner.addEventListener('change', onChange);
  const el = h('div', { class: 'builder' }, h('div', { class: 'actions' }, t('match'), joiner,
    h('button', { type: 'button', class: 'small', onclick: () => { add(); onChange(); } }, t('add_rule'))), rows);
  // Rules still being written (no tag, no name, no value) are left out until they are.
  el.expression = () => {
    const rules = [...rows.children].map((r) => r.rule()).filter(Boolean);
    return rules.length ? { [joiner.value]: rules } : null;
  };
  return el;
}
