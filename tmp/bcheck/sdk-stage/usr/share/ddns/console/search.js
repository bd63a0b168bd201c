// search.js: the device search (#/search?q=...): one box for a MAC in any
// form, a host name, a serial or an address, filters, a sortable result
// table and paging.

import {api} from './api.js';
import {h, clear, timeEl, fmtMac, statusBadge, dash, table, errorBox} from './dom.js';

const PAGE = 25;
const SORTS = [['last_seen', 'Last seen'], ['first_seen', 'First seen'], ['device_id', 'Device'],
  ['model', 'Model'], ['firmware', 'Firmware']];

function go(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  window.location.hash = `#/search?${q.toString()}`;
}

export async function render(main, route) {
  const p = Object.fromEntries(route.params.entries());
  document.title = 'Devices · DDNS console';
  const field = (id, label, control) => h('div', {class: 'field'}, h('label', {for: id}, label), control);
  const q = h('input', {id: 'q', name: 'q', type: 'search', value: p.q || '', autocomplete: 'off',
    spellcheck: 'false', placeholder: '3C:5A:B4:F0:9A:21, cam-42, SN123, 192.0.2.10'});
  const status = h('select', {id: 'f-status', name: 'status'},
    [['', 'any'], ['active', 'active'], ['revoked', 'revoked'],
      ['failing', 'failing (last answer a refusal)'], ['never', 'never seen']].map(([v, t]) =>
      h('option', {value: v, selected: (p.status || '') === v}, t)));
  const model = h('input', {id: 'f-model', name: 'model', value: p.model || '', size: 10});
  const firmware = h('input', {id: 'f-firmware', name: 'firmware', value: p.firmware || '', size: 8});
  const kid = h('input', {id: 'f-kid', name: 'kid', value: p.kid || '', size: 5});
  const sort = h('select', {id: 'f-sort', name: 'sort'},
    SORTS.map(([v, t]) => h('option', {value: v, selected: (p.sort || 'last_seen') === v}, t)));
  const order = h('select', {id: 'f-order', name: 'order'},
    [['desc', 'newest / Z first'], ['asc', 'oldest / A first']].map(([v, t]) =>
      h('option', {value: v, selected: (p.order || 'desc') === v}, t)));
  const filtered = ['status', 'model', 'firmware', 'kid'].some((k) => p[k]);
  const form = h('form', {class: 'search card', role: 'search', 'aria-label': 'Devices'},
    h('div', {class: 'field grow'}, h('label', {for: 'q'}, 'MAC, host name, serial or address'), q),
    h('button', {type: 'submit'}, 'Search'),
    h('details', {class: 'filters', open: filtered},
      h('summary', {}, 'Filters and order'),
      h('div', {class: 'filter-fields'},
        field('f-status', 'Status', status), field('f-model', 'Model', model),
        field('f-firmware', 'Firmware', firmware), field('f-kid', 'Key id', kid),
        field('f-sort', 'Sort by', sort), field('f-order', 'Order', order))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go({q: q.value.trim(), status: status.value, model: model.value.trim(),
      firmware: firmware.value.trim(), kid: kid.value.trim(), sort: sort.value, order: order.value});
  });
  const results = h('section', {'aria-live': 'polite', 'aria-busy': 'true', id: 'results'},
    h('p', {class: 'muted'}, 'Searching…'));
  main.append(h('h1', {}, 'Devices'), form, results);
  if (!route.params.has('q') && !document.activeElement?.closest('form')) q.focus();

  const offset = Math.max(0, parseInt(p.offset || '0', 10) || 0);
  let data;
  try {
    data = await api('GET', 'devices', {q: p.q, status: p.status, model: p.model,
      firmware: p.firmware, kid: p.kid, sort: p.sort, order: p.order, limit: PAGE, offset});
  } catch (e) {
    clear(results).append(errorBox(e.message));
    results.setAttribute('aria-busy', 'false');
    return;
  }
  clear(results);
  results.setAttribute('aria-busy', 'false');
  const devices = data.devices || [];
  const total = data.total ?? devices.length;
  const summary = total === 0 ? 'No device matches.'
    : `Devices ${offset + 1}–${offset + devices.length} of ${total}`;
  results.append(h('p', {id: 'result-count'}, summary));
  if (devices.length === 0) return;
  results.append(table([
    {label: 'Device', cell: (d) => h('a', {href: `#/device/${encodeURIComponent(d.device_id)}`,
      class: 'mono'}, fmtMac(d.device_id))},
    {label: 'Names', cell: (d) => (d.names || []).join(', ') || dash('')},
    {label: 'Status', cell: (d) => statusBadge(d.status)},
    {label: 'Model', cell: (d) => dash(d.model)},
    {label: 'Firmware', cell: (d) => dash(d.firmware)},
    {label: 'Serial', cell: (d) => dash(d.serial)},
    {label: 'Address', cell: (d) => [d.ipv4, d.ipv6].filter(Boolean).join(' ') || dash('')},
    {label: 'Last seen', cell: (d) => timeEl(d.last_seen)},
    {label: 'Last result', cell: (d) => dash(d.last_result)},
  ], devices, 'Devices found'));
  const prev = h('button', {type: 'button', class: 'secondary', disabled: offset === 0,
    onclick: () => go({...p, offset: Math.max(0, offset - PAGE)})}, '← Previous');
  const next = h('button', {type: 'button', class: 'secondary', disabled: offset + devices.length >= total,
    onclick: () => go({...p, offset: offset + PAGE})}, 'Next →');
  results.append(h('nav', {class: 'pager', 'aria-label': 'Pages'}, prev,
    h('span', {class: 'muted'}, `page ${Math.floor(offset / PAGE) + 1} of ${Math.max(1, Math.ceil(total / PAGE))}`), next));
}
