// The visual template editor: blocks dragged from a palette onto the template and
// ordered by drag and drop (SortableJS, vendored under /admin/vendor/sortablejs/ with its
// licence), each block's fields beside them. The editor keeps the design only; the
// server renders it into e-mail HTML (`ee_core::design`) for the preview and the save,
// so the HTML is made and checked in one place.

import Sortable from '../../vendor/sortablejs/sortable.esm.js';
import { h, replace } from '../dom.js';
import { t } from '../i18n.js';

export const KINDS = ['heading', 'text', 'image', 'button', 'columns', 'divider', 'spacer', 'footer'];
/// What a column may not hold.
const NOT_IN_COLUMNS = ['columns', 'footer'];

/// "Unsubscribe" in the template's language: a new design's footer link.
const UNSUBSCRIBE = {
  fr: 'Se désabonner', en: 'Unsubscribe', es: 'Darse de baja', de: 'Abmelden', pt: 'Cancelar inscrição',
  ru: 'Отписаться', zh: '退订', hi: 'सदस्यता रद्द करें', ar: 'إلغاء الاشتراك',
};
const GREETING = {
  fr: 'Bonjour [FNAME|]', en: 'Hello [FNAME|]', es: 'Hola [FNAME|]', de: 'Hallo [FNAME|]', pt: 'Olá [FNAME|]',
  ru: 'Здравствуйте, [FNAME|]', zh: '[FNAME|]您好', hi: 'नमस्ते [FNAME|]', ar: 'مرحبا [FNAME|]',
};

/// A new block of `kind`, with words to replace.
export function newBlock(kind, language = 'en') {
  switch (kind) {
    case 'heading': return { type: 'heading', text: t('design_new_heading') };
    case 'text': return { type: 'text', text: t('design_new_text') };
    case 'image': return { type: 'image', src: 'https://', alt: '' };
    case 'button': return { type: 'button', label: t('design_new_button'), href: 'https://' };
    case 'columns': return { type: 'columns', columns: [{ blocks: [] }, { blocks: [] }] };
    case 'divider': return { type: 'divider' };
    case 'spacer': return { type: 'spacer', height: 24 };
    default: return { type: 'footer', text: '', unsubscribe: UNSUBSCRIBE[language] || UNSUBSCRIBE.en };
  }
}

/// The design a new template starts from: a greeting, a paragraph, a button, a footer.
export function starterDesign(language) {
  return {
    blocks: [
      { type: 'heading', text: GREETING[language] || GREETING.en },
      newBlock('text', language),
      newBlock('button', language),
      newBlock('footer', language),
    ],
  };
}

const clone = (value) => JSON.parse(JSON.stringify(value));

/// A block's place: [top index] or [top index, column, index in the column].
function listOf(design, path) {
  return path.length === 0 ? design.blocks : design.blocks[path[0]].columns[path[1]].blocks;
}

function listPath(el) {
  return el.dataset.list === '' ? [] : el.dataset.list.split('.').map(Number);
}

/// One line that says what a block holds.
function summary(block) {
  switch (block.type) {
    case 'heading': case 'text': return block.text;
    case 'image': return block.alt || block.src;
    case 'button': return `${block.label} → ${block.href}`;
    case 'divider': return '―――';
    case 'spacer': return `${block.height} px`;
    case 'footer': return [block.text, block.unsubscribe].filter(Boolean).join(' · ');
    default: return '';
  }
}

/// The editor: `design` (changed in place), `onChange()` after each change.
export function designer(initial, { language, onChange }) {
  const design = clone(initial);
  design.style = design.style || {};
  let selected = null; // the selected block's place: [i] or [i, c, j]
  let sortables = [];
  const canvas = h('div', { id: 'design-canvas', class: 'design-canvas', dataset: { list: '' }, 'aria-label': t('design_blocks') });
  const props = h('div', { id: 'block-props', class: 'block-props' });
  const errors = new Map(); // path string → message, from the server

  const changed = () => { errors.clear(); onChange(design); };
  // Words are typed in the template's direction (Arabic right to left).
  const textDir = language === 'ar' ? 'rtl' : 'auto';
  const blockAt = (place) => (place.length === 1 ? design.blocks[place[0]] : listOf(design, place.slice(0, 2))[place[2]]);

  const palette = h('div', { id: 'design-palette', class: 'design-palette', 'aria-label': t('design_palette') });
  // Drawn with the canvas: a drag from the palette leaves a copy of the button there
  // (Sortable's clone), without its click handler.
  const paletteItems = () => KINDS.map((kind) => h('button', {
    type: 'button', class: 'palette-item small', dataset: { kind },
    title: t('design_add_hint'),
    onclick: () => { design.blocks.splice(footerIndex(), 0, newBlock(kind, language)); selected = [footerIndex() - 1]; draw(); changed(); },
  }, t(`block_${kind}`)));

  // A block added by a click goes above the footer (the footer stays last).
  function footerIndex() {
    const i = design.blocks.findIndex((b) => b.type === 'footer');
    return i < 0 ? design.blocks.length : i;
  }

  function card(block, place) {
    const key = place.join('.');
    const isSelected = selected && selected.join('.') === key;
    const move = (delta) => {
      const list = listOf(design, place.slice(0, -1));
      const i = place[place.length - 1];
      const j = i + delta;
      if (j < 0 || j >= list.length) return;
      [list[i], list[j]] = [list[j], list[i]];
      selected = [...place.slice(0, -1), j];
      draw(); changed();
    };
    const tools = h('span', { class: 'block-tools' },
      h('button', { type: 'button', class: 'small', title: t('move_up'), 'aria-label': t('move_up'), onclick: (e) => { e.stopPropagation(); move(-1); } }, '↑'),
      h('button', { type: 'button', class: 'small', title: t('move_down'), 'aria-label': t('move_down'), onclick: (e) => { e.stopPropagation(); move(1); } }, '↓'),
      h('button', { type: 'button', class: 'small', title: t('duplicate'), 'aria-label': t('duplicate'), onclick: (e) => {
        e.stopPropagation();
        if (block.type === 'footer') return;
        const list = listOf(design, place.slice(0, -1));
        list.splice(place[place.length - 1] + 1, 0, clone(block));
        draw(); changed();
      } }, '+'),
      h('button', { type: 'button', class: 'small danger', title: t('remove'), 'aria-label': t('remove'), onclick: (e) => {
        e.stopPropagation();
        listOf(design, place.slice(0, -1)).splice(place[place.length - 1], 1);
        selected = null;
        draw(); changed();
      } }, '✕'));
    const error = [...errors.entries()].find(([p]) => p === key || p.startsWith(`${key}.`));
    const el = h('div', {
      class: `block${isSelected ? ' selected' : ''}${error ? ' invalid' : ''}`, tabindex: '0', role: 'button',
      dataset: { kind: block.type, place: key },
      onclick: (e) => { e.stopPropagation(); selected = place; draw(); },
      onkeydown: (e) => { if (e.key === 'Enter' && e.target === el) { selected = place; draw(); } },
    },
    h('div', { class: 'block-head' }, h('span', { class: 'handle', 'aria-hidden': 'true' }, '⠿'),
      h('strong', {}, t(`block_${block.type}`)), h('span', { class: 'block-summary muted' }, summary(block)), tools));
    if (block.type === 'columns') {
      el.append(h('div', { class: 'design-columns' }, block.columns.map((column, c) =>
        h('div', { class: 'design-column', dataset: { list: `${place[0]}.${c}` } },
          column.blocks.map((inner, j) => card(inner, [place[0], c, j]))))));
    }
    return el;
  }

  function draw() {
    sortables.forEach((s) => s.destroy());
    sortables = [];
    replace(palette, paletteItems());
    replace(canvas, design.blocks.map((block, i) => card(block, [i])));
    const lists = [canvas, ...canvas.querySelectorAll('.design-column')];
    for (const list of lists) {
      const inColumn = list !== canvas;
      sortables.push(Sortable.create(list, {
        group: { name: 'blocks', pull: true, put: (_to, _from, dragged) => !(inColumn && NOT_IN_COLUMNS.includes(dragged.dataset.kind)) },
        // Mouse and touch events rather than the browser's drag and drop: the same on
        // every browser, and what a WebDriver test can drive.
        forceFallback: true, fallbackOnBody: true, animation: 120, emptyInsertThreshold: 24,
        draggable: '.block', filter: 'button', preventOnFilter: false,
        onAdd: dropped, onUpdate: dropped,
      }));
    }
    sortables.push(Sortable.create(palette, {
      group: { name: 'blocks', pull: 'clone', put: false }, sort: false,
      forceFallback: true, fallbackOnBody: true, draggable: '.palette-item',
    }));
    drawProps();
  }

  /// A drop (from the palette, another list or the same one): the design changes, then
  /// the canvas is drawn again from it.
  function dropped(event) {
    // The lists themselves, taken before anything moves (a block leaving the top list
    // shifts the places of the columns after it, not their lists).
    const to = listOf(design, listPath(event.to));
    let block;
    if (event.from === palette) {
      event.item.remove();
      block = newBlock(event.item.dataset.kind, language);
    } else {
      [block] = listOf(design, listPath(event.from)).splice(event.oldIndex, 1);
    }
    to.splice(event.newIndex, 0, block);
    selected = placeOf(block);
    // Sortable moved the element itself; the design is the truth, so draw it again.
    setTimeout(() => { draw(); changed(); }, 0);
  }

  /// Where a block (this very object) is now.
  function placeOf(block) {
    for (const [i, top] of design.blocks.entries()) {
      if (top === block) return [i];
      for (const [c, column] of (top.columns || []).entries()) {
        const j = column.blocks.indexOf(block);
        if (j >= 0) return [i, c, j];
      }
    }
    return null;
  }

  function field(name, label, input, help) {
    const id = `prop-${name}`;
    input.id = id;
    const place = selected ? selected.join('.') : '';
    const message = errors.get(`${place}.${name}`);
    return h('div', { class: 'field', dataset: { prop: name } }, h('label', { for: id }, label), input,
      help ? h('small', { class: 'muted' }, help) : null,
      message ? h('span', { class: 'field-error', role: 'alert' }, message) : null);
  }

  /// An input bound to `obj[key]` (numbers as numbers, empty as absent).
  function bound(obj, key, { type = 'text', rows, options, number, fallback } = {}) {
    const set = (value) => {
      if (value === '' || value === null) delete obj[key];
      else obj[key] = number ? Number(value) : value;
      const summaryEl = canvas.querySelector(`[data-place="${selected.join('.')}"] .block-summary`);
      if (summaryEl) summaryEl.textContent = summary(blockAt(selected));
      changed();
    };
    let input;
    if (options) {
      input = h('select', {}, options.map(([value, label]) => h('option', { value, selected: String(obj[key] ?? '') === String(value) }, label)));
      input.addEventListener('change', () => set(input.value));
    } else if (rows) {
      input = h('textarea', { rows, dir: textDir }, obj[key] ?? '');
      input.addEventListener('input', () => set(input.value));
    } else {
      input = h('input', { type, value: obj[key] ?? fallback ?? '', dir: type === 'text' ? textDir : null });
      input.addEventListener(type === 'color' ? 'change' : 'input', () => set(input.value));
    }
    return input;
  }

  const alignOptions = () => [['', t('align_auto')], ['left', t('align_left')], ['center', t('align_center')], ['right', t('align_right')]];

  function drawProps() {
    if (!selected || !blockAt(selected)) {
      replace(props, h('h3', {}, t('design_style')), styleFields(), h('p', { class: 'muted' }, t('design_pick_block')));
      return;
    }
    const b = blockAt(selected);
    const rows = {
      heading: () => [field('text', t('design_words'), bound(b, 'text')),
        field('level', t('design_level'), bound(b, 'level', { options: [['', '1'], ['2', '2'], ['3', '3']], number: true })),
        field('align', t('design_align'), bound(b, 'align', { options: alignOptions() }))],
      text: () => [field('text', t('design_words'), bound(b, 'text', { rows: 8 }), t('design_markup_help')),
        field('align', t('design_align'), bound(b, 'align', { options: alignOptions() }))],
      image: () => [field('src', t('design_image_address'), bound(b, 'src', { type: 'url' })),
        field('alt', t('design_image_alt'), bound(b, 'alt')),
        field('href', t('design_link'), bound(b, 'href', { type: 'url' })),
        field('width', t('design_width_px'), bound(b, 'width', { type: 'number', number: true })),
        field('align', t('design_align'), bound(b, 'align', { options: alignOptions() }))],
      button: () => [field('label', t('design_label'), bound(b, 'label')),
        field('href', t('design_link'), bound(b, 'href', { type: 'url' })),
        field('color', t('design_button_color'), bound(b, 'color', { type: 'color', fallback: design.style.link_color || '#1a56db' })),
        field('text_color', t('design_text_color'), bound(b, 'text_color', { type: 'color', fallback: '#ffffff' })),
        field('align', t('design_align'), bound(b, 'align', { options: alignOptions() }))],
      columns: () => [field('count', t('design_columns_count'), columnCount(b))],
      divider: () => [field('color', t('design_color'), bound(b, 'color', { type: 'color', fallback: '#d1d5db' })),
        field('thickness', t('design_thickness'), bound(b, 'thickness', { type: 'number', number: true, fallback: 1 }))],
      spacer: () => [field('height', t('design_height_px'), bound(b, 'height', { type: 'number', number: true }))],
      footer: () => [field('text', t('design_footer_text'), bound(b, 'text', { rows: 3 })),
        field('unsubscribe', t('design_unsubscribe_words'), bound(b, 'unsubscribe'), t('design_unsubscribe_help')),
        field('align', t('design_align'), bound(b, 'align', { options: alignOptions() }))],
    }[b.type];
    replace(props, h('h3', {}, t(`block_${b.type}`)), rows ? rows() : null,
      h('button', { type: 'button', class: 'small', onclick: () => { selected = null; draw(); } }, t('design_style')));
  }

  function columnCount(b) {
    const input = h('select', {}, [2, 3].map((n) => h('option', { value: n, selected: b.columns.length === n }, String(n))));
    input.addEventListener('change', () => {
      const n = Number(input.value);
      while (b.columns.length < n) b.columns.push({ blocks: [] });
      // A column taken away gives its blocks to the one before it.
      while (b.columns.length > n) b.columns[b.columns.length - 2].blocks.push(...b.columns.pop().blocks);
      draw(); changed();
    });
    return input;
  }

  function styleFields() {
    const s = design.style;
    return [
      field('background', t('design_background'), bound(s, 'background', { type: 'color', fallback: '#f4f4f5' })),
      field('content_background', t('design_content_background'), bound(s, 'content_background', { type: 'color', fallback: '#ffffff' })),
      field('text_color', t('design_text_color'), bound(s, 'text_color', { type: 'color', fallback: '#1f2933' })),
      field('link_color', t('design_link_color'), bound(s, 'link_color', { type: 'color', fallback: '#1a56db' })),
      field('font', t('design_font'), bound(s, 'font', { options: [['', t('font_sans')], ['serif', t('font_serif')], ['mono', t('font_mono')]] })),
      field('width', t('design_width_px'), bound(s, 'width', { type: 'number', number: true, fallback: 600 })),
    ];
  }

  draw();
  const el = h('div', { class: 'designer' },
    h('div', { class: 'designer-left' }, h('h3', {}, t('design_palette')), palette, h('small', { class: 'muted' }, t('design_add_hint')),
      h('h3', {}, t('design_blocks')), canvas),
    h('div', { class: 'designer-right' }, props));
  return {
    el,
    design: () => design,
    /// The server's answer to a save: `design.blocks[2].href` selects that block and
    /// shows the message beside its field.
    showError(fieldPath, message) {
      const m = /^design\.blocks\[(\d+)\](?:\.columns\[(\d+)\]\.blocks\[(\d+)\])?(?:\.(\w+))?/.exec(fieldPath || '');
      if (!m) return false;
      const place = m[2] === undefined ? [Number(m[1])] : [Number(m[1]), Number(m[2]), Number(m[3])];
      errors.set(`${place.join('.')}.${m[4] || ''}`, message);
      selected = place;
      draw();
      return true;
    },
  };
}
