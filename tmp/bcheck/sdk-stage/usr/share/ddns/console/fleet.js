// fleet.js: the fleet overview (#/fleet): updates and errors per minute,
// counts by status, model, firmware and key id, devices not seen for N
// days, the DNS outbox, and the devices and source addresses failing most.

import {api} from './api.js';
import {h, fmtAge, fmtMac, dash, table, errorBox} from './dom.js';
import {perMinuteChart, shareBar} from './charts.js';

// {a: 3, b: 1} or [{model: 'a', count: 3}, ...] -> [['a', 3], ['b', 1]], largest first.
function pairs(v) {
  let out = [];
  if (Array.isArray(v)) {
    out = v.map((r) => {
      const key = Object.keys(r).find((k) => k !== 'count' && k !== 'devices');
      return [r[key] === null || r[key] === undefined ? '(none)' : String(r[key]), Number(r.count ?? r.devices ?? 0)];
    });
  } else if (v && typeof v === 'object') {
    out = Object.entries(v).map(([k, n]) => [k === '' ? '(none)' : k, Number(n)]);
  }
  return out.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

function countsCard(title, id, v, param) {
  const rows = pairs(v);
  const total = rows.reduce((a, r) => a + r[1], 0) || 1;
  return h('section', {class: 'card', 'aria-labelledby': id},
    h('h2', {id}, title),
    rows.length === 0 ? h('p', {class: 'muted'}, 'none') : table([
      {label: title, cell: (r) => param && r[0] !== '(none)'
        ? h('a', {href: `#/search?${param}=${encodeURIComponent(r[0])}`}, r[0]) : r[0]},
      {label: 'Devices', num: true, cell: (r) => String(r[1])},
      {label: 'Share', head: h('span', {class: 'sr-only'}, 'Share'),
        cell: (r) => shareBar(r[1] / total, `${Math.round((r[1] / total) * 100)} %`)},
    ], rows.slice(0, 15), `${title}: devices`, {stack: false}));
}

function failingDevices(rows) {
  if (!rows || rows.length === 0) return h('p', {class: 'muted'}, 'No device is failing.');
  return table([
    {label: 'Device', cell: (d) => h('a', {href: `#/device/${encodeURIComponent(d.device_id)}`,
      class: 'mono'}, fmtMac(d.device_id))},
    {label: 'Names', cell: (d) => (d.names || []).join(', ') || dash('')},
    {label: 'Model', cell: (d) => dash(d.model)},
    {label: 'Firmware', cell: (d) => dash(d.firmware)},
    {label: 'Failures', num: true, cell: (d) => dash(d.fail_count)},
    {label: 'Last result', cell: (d) => dash(d.last_result)},
    {label: 'From', cell: (d) => h('span', {class: 'mono'}, dash(d.last_source))},
  ], rows);
}

function failingSources(rows) {
  if (!rows || rows.length === 0) return h('p', {class: 'muted'}, 'No source address is failing.');
  return table([
    {label: 'Source address', cell: (r) => h('span', {class: 'mono'}, dash(r.source))},
    {label: 'Failed authentications (last hour)', num: true, cell: (r) => dash(r.auth_failures)},
    {label: 'Failing devices', num: true, cell: (r) => dash(r.devices)},
    {label: 'Failures', num: true, cell: (r) => dash(r.failures)},
  ], rows, 'Failing source addresses');
}

export async function render(main, route) {
  document.title = 'Fleet · DDNS console';
  const days = Math.max(1, parseInt(route.params.get('days') || '7', 10) || 7);
  main.append(h('h1', {}, 'Fleet'));
  const [fleet, failing] = await Promise.all([
    api('GET', 'fleet', {not_seen_days: days}),
    api('GET', 'fleet/failing').catch((e) => ({error: e.message})),
  ]);
  const outbox = fleet.outbox || {};
  const notSeen = fleet.not_seen || {};
  const daysInput = h('input', {id: 'days', type: 'number', min: 1, max: 3650, value: notSeen.days || days, size: 4});
  const daysForm = h('form', {class: 'inline'},
    h('label', {for: 'days'}, 'Not seen for '), daysInput, ' days ',
    h('button', {type: 'submit', class: 'secondary'}, 'Count'));
  daysForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    window.location.hash = `#/fleet?days=${encodeURIComponent(daysInput.value)}`;
  });
  const total = fleet.devices ?? pairs(fleet.by_status).reduce((a, r) => a + r[1], 0);
  const series = fleet.per_minute || [];
  const lastHour = series.reduce((a, p) => a + (p.updates || 0), 0);
  main.append(
    h('div', {class: 'grid stats'},
      h('section', {class: 'card stat-card', 'aria-labelledby': 'h-total'},
        h('h2', {id: 'h-total'}, 'Devices'), h('p', {class: 'stat', id: 'fleet-total'}, String(total))),
      h('section', {class: 'card stat-card', 'aria-labelledby': 'h-updates'},
        h('h2', {id: 'h-updates'}, `Updates, last ${series.length} min`),
        h('p', {class: 'stat'}, String(lastHour))),
      h('section', {class: 'card stat-card', 'aria-labelledby': 'h-outbox', id: 'outbox'},
        h('h2', {id: 'h-outbox'}, 'DNS outbox'),
        h('p', {class: 'stat', id: 'outbox-depth'}, String(outbox.depth ?? '—')),
        h('p', {class: 'muted'}, outbox.depth ? `changes waiting; the oldest for ${fmtAge(outbox.oldest_age_s)}`
          : 'nothing waiting: the DNS server has every change')),
      h('section', {class: 'card stat-card', 'aria-labelledby': 'h-notseen'},
        h('h2', {id: 'h-notseen'}, 'Not seen'),
        h('p', {class: 'stat', id: 'not-seen'}, String(notSeen.count ?? '—')),
        daysForm)),
    perMinuteChart(series, 'Updates and errors per minute'),
    h('div', {class: 'grid'},
      countsCard('Status', 'h-status', fleet.by_status, 'status'),
      countsCard('Model', 'h-model', fleet.by_model, 'model'),
      countsCard('Firmware', 'h-firmware', fleet.by_firmware, 'firmware'),
      countsCard('Key id', 'h-kid', fleet.by_kid, 'kid')),
    h('section', {class: 'card', 'aria-labelledby': 'h-failing'},
      h('h2', {id: 'h-failing'}, 'Failing most'),
      failing.error ? errorBox(failing.error) : [
        h('h3', {}, 'Devices'), failingDevices(failing.devices),
        h('h3', {}, 'Source addresses'), h('div', {id: 'failing-sources'}, failingSources(failing.sources))]));
}
