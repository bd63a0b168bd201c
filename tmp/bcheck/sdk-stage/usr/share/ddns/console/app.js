// app.js: the console's shell: login, navigation (#/search, #/device/ID,
// #/fleet) and the header. Each page is a module with render(main, params).

import {api, getToken, setToken, clearToken, whenUnauthorized, session} from './api.js';
import {h, clear, errorBox, fmtTime} from './dom.js';
import * as search from './search.js';
import * as device from './device.js';
import * as fleet from './fleet.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const whoText = document.getElementById('who-text');

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return {page: parts[0] || 'search', arg: parts[1], params: new URLSearchParams(query || '')};
}

function showLogin(message) {
  nav.hidden = true;
  who.hidden = true;
  document.title = 'Log in · DDNS console';
  const input = h('input', {id: 'token', name: 'token', type: 'password', required: true,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-help'});
  const status = h('div', {'aria-live': 'polite'}, message ? errorBox(message) : null);
  const form = h('form', {class: 'card login', id: 'login', novalidate: true},
    h('h1', {}, 'Log in'),
    h('div', {class: 'field'},
      h('label', {for: 'token'}, 'Admin API token'),
      input,
      h('small', {id: 'token-help', class: 'muted'},
        'Created with “ddnsctl token create”. It is kept in this browser tab only.')),
    status,
    h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Log in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    clear(status);
    if (!t) {
      status.append(errorBox('Enter a token.'));
      input.focus();
      return;
    }
    try {
      const me = await api('GET', 'whoami', null, undefined, t);
      setToken(t);
      session.scope = me.scope;
      showWho(me);
      if (!window.location.hash || window.location.hash === '#/login') window.location.hash = '#/search';
      else route();
    } catch (e) {
      status.append(errorBox(e.status === 401 || e.status === 403
        ? 'The gateway refused this token (unknown, revoked or expired).' : e.message));
      input.select();
    }
  });
  clear(main).append(form);
  input.focus();
}

function showWho(me) {
  nav.hidden = false;
  who.hidden = false;
  whoText.textContent = `token ${me.token_id}${me.comment ? ` (${me.comment})` : ''} · ${me.scope}` +
    (me.expires ? ` · expires ${fmtTime(me.expires)}` : '');
}

async function route() {
  if (!getToken()) {
    showLogin();
    return;
  }
  if (session.scope === null) {
    try {
      const me = await api('GET', 'whoami');
      session.scope = me.scope;
      showWho(me);
    } catch (e) {
      if (e.status !== 401) clear(main).append(errorBox(e.message));
      return;
    }
  }
  const r = parseHash();
  const pages = {search, device, fleet};
  const page = pages[r.page] || search;
  for (const a of nav.querySelectorAll('a')) {
    const current = a.dataset.nav === (r.page === 'device' ? 'search' : r.page);
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  clear(main);
  try {
    await page.render(main, r);
  } catch (e) {
    if (e.status !== 401) main.append(errorBox(e.message));
  }
  // After a change of page, keyboard and screen reader users start at its
  // heading (unless the page put the focus somewhere itself).
  if (!main.contains(document.activeElement)) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({preventScroll: true});
    }
  }
}

whenUnauthorized(() => {
  clearToken();
  session.scope = null;
  showLogin('The gateway no longer accepts the token (revoked or expired): log in again.');
});

document.getElementById('logout').addEventListener('click', () => {
  clearToken();
  session.scope = null;
  showLogin();
});

window.addEventListener('hashchange', route);
route();
