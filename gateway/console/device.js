// device.js: one device (#/device/ID): names, addresses, first and last
// seen, last result, user agent, the history of address changes and of
// admin actions; revoke, restore and republish with a confirmation.

import {api, session} from './api.js';
import {h, timeEl, fmtMac, statusBadge, dash, table, errorBox} from './dom.js';
import {confirmAction} from './confirm.js';

const ACTIONS = {
  revoke: {label: 'Revoke', title: 'Revoke this device?', danger: true,
    text: 'Its updates will be refused (“disabled”) and its DNS records removed until it is restored.'},
  restore: {label: 'Restore', title: 'Restore this device?',
    text: 'Its updates will be accepted again; its names come back with its next update.'},
  republish: {label: 'Republish', title: 'Republish this device’s records?',
    text: 'Its current records are queued in the outbox and sent to the DNS server again.'},
};

// {"previous_status": "active", "records_removed": 1} -> "previous status:
// active, records removed: 1".
function detailText(detail) {
  if (detail === null || detail === undefined || detail === '') return dash('');
  if (typeof detail !== 'object') return String(detail);
  const parts = Object.entries(detail).map(([k, v]) =>
    `${k.replace(/_/g, ' ')}: ${v !== null && typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.length ? parts.join(', ') : dash('');
}

export async function render(main, route) {
  const id = route.arg || '';
  document.title = `${fmtMac(id)} · DDNS console`;
  const d = await api('GET', `devices/${encodeURIComponent(id)}`);
  const flash = h('div', {'aria-live': 'polite', id: 'flash'});
  if (route.params.get('done')) {
    flash.append(h('p', {class: 'notice'}, `Done: ${route.params.get('done')}.`));
  }
  const facts = [
    ['Device id', h('span', {class: 'mono'}, d.device_id)],
    ['MAC', h('span', {class: 'mono'}, fmtMac(d.device_id))],
    ['Status', h('span', {id: 'device-status'}, statusBadge(d.status))],
    ['Names', (d.names || []).length
      ? h('ul', {class: 'plain', id: 'device-names'}, d.names.map((n) => h('li', {class: 'mono'}, n)))
      : dash('')],
    ['IPv4', h('span', {class: 'mono'}, dash(d.ipv4))],
    ['IPv6', h('span', {class: 'mono'}, dash(d.ipv6))],
    ['TTL', d.ttl === undefined ? null : (d.ttl === null ? h('span', {class: 'muted'}, 'zone default') : `${d.ttl} s`)],
    ['First seen', timeEl(d.first_seen)],
    ['Last seen', d.last_seen_interval
      ? h('span', {}, timeEl(d.last_seen),
          h('span', {class: 'muted', id: 'last-seen-interval'},
            ` (polls that change nothing are recorded every ${d.last_seen_interval} s)`))
      : timeEl(d.last_seen)],
    ['Last seen from', d.last_source === undefined ? null : h('span', {class: 'mono'}, dash(d.last_source))],
    ['Last result', h('span', {id: 'last-result'}, dash(d.last_result))],
    ['User agent', dash(d.user_agent)],
    ['Model', dash(d.model)],
    ['Firmware', dash(d.firmware)],
    ['Serial', dash(d.serial)],
    ['Key id', dash(d.kid)],
    ['Batch', dash(d.batch)],
    ['Failures since the last success', d.fail_count === undefined ? null : dash(d.fail_count)],
  ].filter(([, v]) => v !== null);
  const bar = h('div', {class: 'actions-bar'});
  if (session.scope === 'write') {
    const which = d.status === 'revoked' ? ['restore'] : ['revoke', 'republish'];
    for (const act of which) {
      const a = ACTIONS[act];
      bar.append(h('button', {type: 'button', id: `action-${act}`, class: a.danger ? 'danger' : 'secondary',
        onclick: () => run(act, d, flash)}, a.label));
    }
  } else {
    bar.append(h('p', {class: 'muted'}, 'This token may read only: revoke and restore need a write token.'));
  }
  main.append(
    h('p', {}, h('a', {href: '#/search'}, '← Devices')),
    h('h1', {tabindex: '-1', id: 'device-title'}, 'Device ', h('span', {class: 'mono'}, fmtMac(d.device_id))),
    flash, bar,
    h('section', {class: 'card', 'aria-labelledby': 'h-facts'},
      h('h2', {id: 'h-facts', class: 'sr-only'}, 'Details'),
      h('dl', {class: 'facts'}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
    h('section', {'aria-labelledby': 'h-history'},
      h('h2', {id: 'h-history'}, 'Address changes'),
      (d.history || []).length ? table([
        {label: 'When', cell: (r) => timeEl(r.at)},
        {label: 'Name', cell: (r) => h('span', {class: 'mono'}, dash(r.fqdn))},
        {label: 'IPv4', cell: (r) => h('span', {class: 'mono'}, dash(r.ipv4))},
        {label: 'IPv6', cell: (r) => h('span', {class: 'mono'}, dash(r.ipv6))},
        {label: 'From', cell: (r) => r.source ? h('span', {class: 'mono'}, r.source)
          : h('span', {class: 'muted'}, 'operator')},
      ], d.history) : h('p', {class: 'muted'}, 'No address recorded yet.')),
    h('section', {'aria-labelledby': 'h-actions'},
      h('h2', {id: 'h-actions'}, 'Admin actions'),
      (d.actions || []).length ? h('div', {id: 'device-actions'}, table([
        {label: 'When', cell: (r) => timeEl(r.at)},
        {label: 'Who', cell: (r) => dash(r.actor)},
        {label: 'Action', cell: (r) => dash(r.action)},
        {label: 'Detail', cell: (r) => detailText(r.detail)},
        {label: 'From', cell: (r) => h('span', {class: 'mono'}, dash(r.source))},
      ], d.actions)) : h('p', {class: 'muted'}, 'No admin action recorded.')));
  if (route.params.get('done')) document.getElementById('device-title').focus();
}

async function run(act, d, flash) {
  const a = ACTIONS[act];
  const answer = await confirmAction({title: a.title, ok: a.label,
    text: `${fmtMac(d.device_id)} (${(d.names || []).join(', ') || 'no name'}): ${a.text}`});
  if (!answer) return;
  flash.replaceChildren(h('p', {class: 'muted'}, `${a.label}…`));
  try {
    await api('POST', `devices/${encodeURIComponent(d.device_id)}/${act}`);
  } catch (e) {
    flash.replaceChildren(errorBox(`${a.label} failed: ${e.message}`));
    return;
  }
  const done = {revoke: 'revoked', restore: 'restored', republish: 'records queued again'}[act];
  const target = `#/device/${encodeURIComponent(d.device_id)}?done=${encodeURIComponent(done)}`;
  if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else window.location.hash = target;
}
