// charts.js: small inline SVG charts (no library; SVG attributes only, so
// the Content-Security-Policy needs no inline styles).

import {s, h} from './dom.js';

// Updates and errors per minute as stacked bars: series [{minute, updates,
// errors}], oldest first. The SVG carries a text summary for screen
// readers; the numbers are also in the table beside it.
export function perMinuteChart(series, title) {
  const W = 600, H = 160, L = 36, B = 18, T = 6;
  const n = Math.max(series.length, 1);
  const max = Math.max(1, ...series.map((p) => (p.updates || 0) + (p.errors || 0)));
  const bw = (W - L) / n;
  const y = (v) => H - B - (v / max) * (H - B - T);
  const sumU = series.reduce((a, p) => a + (p.updates || 0), 0);
  const sumE = series.reduce((a, p) => a + (p.errors || 0), 0);
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${title}: ${sumU} updates and ${sumE} errors in ${series.length} minutes, at most ${max} a minute`},
  s('line', {class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B}),
  s('line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}),
  s('text', {x: L - 4, y: T + 8, 'text-anchor': 'end'}, String(max)),
  s('text', {x: L - 4, y: H - B, 'text-anchor': 'end'}, '0'));
  series.forEach((p, i) => {
    const x = L + i * bw + bw * 0.1;
    const w = Math.max(bw * 0.8, 0.5);
    const u = p.updates || 0, e = p.errors || 0;
    const label = `${p.minute}: ${u} updates, ${e} errors`;
    if (u > 0) {
      svg.append(s('rect', {class: 'updates', x, y: y(u + e), width: w, height: y(e) - y(u + e)},
        s('title', {}, label)));
    }
    if (e > 0) {
      svg.append(s('rect', {class: 'errors', x, y: y(e), width: w, height: H - B - y(e)},
        s('title', {}, label)));
    }
  });
  if (series.length > 0) {
    const hm = (m) => { const d = new Date(m); return Number.isNaN(d.getTime()) ? String(m) : d.toTimeString().slice(0, 5); };
    svg.append(s('text', {x: L, y: H - 4}, hm(series[0].minute)),
      s('text', {x: W, y: H - 4, 'text-anchor': 'end'}, hm(series[series.length - 1].minute)));
  }
  return h('figure', {class: 'card'},
    h('figcaption', {}, h('strong', {}, title), ' ',
      h('span', {class: 'legend'}, h('span', {}, h('span', {class: 'swatch updates'}), 'updates'),
        h('span', {}, h('span', {class: 'swatch errors'}), 'errors'))),
    svg);
}

// A horizontal bar for a share of a total (0..1).
export function shareBar(share, label) {
  const w = Math.max(0, Math.min(1, share)) * 100;
  return s('svg', {class: 'bar', viewBox: '0 0 100 6', preserveAspectRatio: 'none', role: 'img',
    'aria-label': label}, s('rect', {x: 0, y: 0, width: w, height: 6}));
}
