// dom.js: building elements without innerHTML (every value from the API is
// text), and the formats the pages share.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('a', {href: '#/x', class: 'y'}, 'text', child, ...): an element.
// Attributes whose value is null, undefined or false are left out; 'on*'
// functions become event listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A time from the API (ISO 8601 text or seconds since 1970) as local
// "YYYY-MM-DD HH:MM:SS", with the full value as the title; '' for none.
export function fmtTime(v) {
  if (v === null || v === undefined || v === '') return '';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function timeEl(v) {
  const t = fmtTime(v);
  if (!t) return h('span', {class: 'muted'}, '—');
  return h('time', {datetime: typeof v === 'number' ? new Date(v * 1000).toISOString() : v,
    title: String(v)}, t);
}

// "3c5ab4f09a21" or "3c-5a-b4-f0-9a-21" -> "3C:5A:B4:F0:9A:21" (anything
// else unchanged).
export function fmtMac(id) {
  const hex = typeof id === 'string' ? id.replace(/[:.\-]/g, '') : '';
  if (!/^[0-9a-f]{12}$/i.test(hex)) return id || '';
  return hex.toUpperCase().match(/../g).join(':');
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const n = Number(seconds);
  if (n < 90) return `${Math.round(n)} s`;
  if (n < 5400) return `${Math.round(n / 60)} min`;
  if (n < 172800) return `${Math.round(n / 3600)} h`;
  return `${Math.round(n / 86400)} d`;
}

export function statusBadge(status) {
  return h('span', {class: `status status-${status || 'unknown'}`}, status || 'unknown');
}

export function dash(v) {
  return v === null || v === undefined || v === '' ? h('span', {class: 'muted'}, '—') : String(v);
}

// A table; columns: [{label, cell(row) -> node|text, num}]. On phones it
// stacks (class "stack"), each cell labelled by data-label.
export function table(columns, rows, caption, {stack = true} = {}) {
  return h('div', {class: 'table-wrap'},
    h('table', {class: stack ? 'stack' : null},
      caption ? h('caption', {class: 'sr-only'}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) =>
        h('th', {scope: 'col', class: c.num ? 'num' : null}, c.head || c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) =>
        h('td', {'data-label': c.label, class: c.num ? 'num' : null}, c.cell(r))))))));
}

export function errorBox(text) {
  return h('p', {class: 'error', role: 'alert'}, text);
}
