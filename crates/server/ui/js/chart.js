// Small SVG charts, drawn here rather than with a charting library: the UI loads nothing
// from elsewhere and needs only lines and bars.

import { num } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  for (const child of children.flat(Infinity)) if (child) el.append(child);
  return el;
}

function text(x, y, content, attrs = {}) {
  const el = svg('text', { x, y, ...attrs });
  el.textContent = content;
  return el;
}

/// Lines over shared x labels: `series` is [{name, values: [number|null], kind}].
export function lineChart(labels, series, { height = 220, title = '' } = {}) {
  const width = 640;
  const pad = { left: 48, right: 12, top: 16, bottom: 40 };
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined)));
  const x = (i) => pad.left + (labels.length <= 1 ? 0 : (i * (width - pad.left - pad.right)) / (labels.length - 1));
  const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const grid = [0, 0.5, 1].map((f) => [
    svg('line', { x1: pad.left, x2: width - pad.right, y1: y(max * f), y2: y(max * f), class: 'grid' }),
    text(pad.left - 6, y(max * f) + 4, num(Math.round(max * f)), { 'text-anchor': 'end', class: 'axis' }),
  ]);
  const step = Math.max(1, Math.ceil(labels.length / 8));
  const ticks = labels.map((label, i) => (i % step === 0
    ? text(x(i), height - pad.bottom + 16, label, { 'text-anchor': 'middle', class: 'axis' }) : null));
  // A line through the values; a series of kind `points` (or of one value) as dots.
  const lines = series.map((s, n) => {
    const at = s.values.map((v, i) => (v === null || v === undefined ? null : [x(i), y(v)])).filter(Boolean);
    if (s.kind === 'points' || at.length === 1) {
      return at.map(([px, py]) => svg('circle', { cx: px, cy: py, r: 4, class: `dot s${n}` }));
    }
    return svg('polyline', { points: at.map((p) => p.join(',')).join(' '), class: `series s${n}`, fill: 'none' });
  });
  const legend = series.map((s, n) => [
    svg('rect', { x: pad.left + n * 150, y: height - 14, width: 10, height: 10, class: `swatch s${n}` }),
    text(pad.left + n * 150 + 14, height - 5, s.name, { class: 'axis' }),
  ]);
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title }, grid, ticks, lines, legend);
}

/// Horizontal bars: rows of [label, value, max?].
export function barChart(rows, { title = '' } = {}) {
  const width = 640;
  const rowHeight = 26;
  const height = rows.length * rowHeight + 8;
  const max = Math.max(1, ...rows.map((r) => r[2] ?? r[1]));
  const items = rows.map(([label, value, limit], i) => {
    const y = 4 + i * rowHeight;
    const full = 400;
    return [
      text(0, y + 16, label, { class: 'axis' }),
      limit ? svg('rect', { x: 180, y: y + 4, width: (limit / max) * full, height: 16, class: 'limit' }) : null,
      svg('rect', { x: 180, y: y + 4, width: Math.max(1, (value / max) * full), height: 16, class: 'bar' }),
      text(186 + (Math.max(value, limit || 0) / max) * full, y + 16, limit ? `${num(value)} / ${num(limit)}` : num(value), { class: 'axis' }),
    ];
  });
  return svg('svg', { viewBox: `0 0 ${width} ${Math.max(height, 30)}`, class: 'chart bars', role: 'img', 'aria-label': title }, items);
}
