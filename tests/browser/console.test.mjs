// Browser test of the DDNS web console: headless Debian Chromium driven by
// playwright-core. Started by tests/integration/test_console.py, which
// starts the real stack (PostgreSQL, Knot DNS, ddns-gateway), provisions a
// device, creates the tokens and passes everything in CONSOLE_TEST (JSON):
//   url        the console, "http://127.0.0.1:PORT/console/"
//   token      a write token; read_token: a read-only one
//   device_id  the device to find, mac: its MAC as typed in the search box
//   paging_q   a search that finds 30 devices
//   update     argv of one update as the device (ddns-client ...)
//   artifacts  directory for the screenshots
// Prints one line per check and ends with "N passed, N failed".
import {chromium} from 'playwright-core';
import {spawnSync} from 'node:child_process';
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';

const cfg = JSON.parse(process.env.CONSOLE_TEST || '{}');
for (const k of ['url', 'token', 'read_token', 'device_id', 'mac', 'mac_display', 'fqdn', 'update', 'paging_q',
  'artifacts']) {
  if (!cfg[k]) {
    console.error(`console.test.mjs: CONSOLE_TEST lacks "${k}" (run it through tests/integration/test_console.py)`);
    process.exit(2);
  }
}
const results = {passed: 0, failed: 0};
const problems = [];
mkdirSync(cfg.artifacts, {recursive: true});

async function check(name, fn) {
  try {
    await fn();
    results.passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    results.failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n     ')}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

// One update as the device; returns the gateway's answer line and exit status.
let lastUpdate = 0;
async function update(ipv4) {
  // ts has one-second resolution and must grow (replay rule): start each
  // update in a second of its own.
  while (Math.floor(Date.now() / 1000) <= lastUpdate) await new Promise((r) => setTimeout(r, 50));
  const p = spawnSync(cfg.update[0], [...cfg.update.slice(1), '--ipv4', ipv4], {encoding: 'utf8', timeout: 30000});
  lastUpdate = Math.floor(Date.now() / 1000);
  return {status: p.status, out: (p.stdout || '').trim(), err: (p.stderr || '').trim()};
}

const shot = (page, name) => page.screenshot({path: join(cfg.artifacts, `${name}.png`), fullPage: true});

async function newPage(browser, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  // Nothing the page does may break the Content-Security-Policy or throw.
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  return {context, page};
}

async function login(page, token) {
  await page.goto(cfg.url);
  await page.getByLabel('Admin API token').fill(token);
  await page.getByRole('button', {exact: true, name: 'Log in'}).click();
  await page.getByRole('navigation', {name: 'Main'}).waitFor();
}

const args = ['--headless=new', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions',
  // Chromium's sandbox needs user namespaces, which root, many containers
  // and some distributions' defaults do not give it; the page is our own
  // console on loopback. A small /dev/shm (64 MB in containers) would crash
  // the renderer: shared memory goes to /tmp instead.
  '--no-sandbox', '--disable-dev-shm-usage'];
const browser = await chromium.launch({executablePath: '/usr/bin/chromium', args, headless: true});

try {
  const {context, page} = await newPage(browser, {viewport: {width: 1280, height: 800}});

  await check('login screen; a wrong token is refused', async () => {
    await page.goto(cfg.url);
    await page.getByRole('heading', {name: 'Log in'}).waitFor();
    expect(await page.getByRole('navigation', {name: 'Main'}).isHidden() &&
           await page.locator('#who-text').isHidden(), 'navigation shown before logging in');
    await page.getByLabel('Admin API token').fill('not-a-token');
    await page.getByRole('button', {exact: true, name: 'Log in'}).click();
    await page.getByRole('alert').filter({hasText: 'refused'}).waitFor();
    expect(await page.getByRole('navigation', {name: 'Main'}).isHidden(), 'navigation shown after a refused token');
    expect(await page.evaluate(() => sessionStorage.length) === 0, 'a refused token was stored');
    await shot(page, 'desktop-1-login-refused');
  });

  await check('login with a write token; the token stays in sessionStorage only', async () => {
    await login(page, cfg.token);
    const where = await page.evaluate(() => ({s: Object.values(sessionStorage), l: localStorage.length,
      c: document.cookie, u: location.href}));
    expect(where.s.includes(cfg.token), 'token not in sessionStorage');
    expect(where.l === 0 && where.c === '' && !where.u.includes(cfg.token), 'token leaked outside sessionStorage');
    await page.locator('#who-text').filter({hasText: 'write'}).waitFor();
  });

  await check('search by MAC finds the device', async () => {
    await page.getByLabel('MAC, host name, serial or address').fill(cfg.mac);
    await page.getByRole('button', {exact: true, name: 'Search'}).click();
    await page.locator('#result-count').filter({hasText: 'of 1'}).waitFor();
    await shot(page, 'desktop-2-search');
    await page.getByRole('link', {exact: true, name: cfg.mac_display}).click();
    await page.locator('#device-title').waitFor();
    await page.locator('#device-status').filter({hasText: 'active'}).waitFor();
    const names = await page.locator('#device-names li').allTextContents();
    expect(names.includes(cfg.fqdn), `names ${names} lack ${cfg.fqdn}`);
    const fresh = await page.locator('#last-seen-interval').textContent();
    expect(/recorded every \d+ s/.test(fresh), `last seen interval: ${fresh}`);
    await page.getByText('Address changes').waitFor();
    await shot(page, 'desktop-3-device');
  });

  await check('revoke asks for confirmation; cancel changes nothing', async () => {
    await page.getByRole('button', {exact: true, name: 'Revoke'}).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await shot(page, 'desktop-4-confirm');
    await page.keyboard.press('Escape');
    await dlg.waitFor({state: 'hidden'});
    await page.locator('#device-status').filter({hasText: 'active'}).waitFor();
  });

  await check('revoke with confirmation; the gateway refuses the next update', async () => {
    await page.getByRole('button', {exact: true, name: 'Revoke'}).click();
    await page.getByRole('dialog').getByRole('button', {exact: true, name: 'Revoke'}).click();
    await page.locator('#device-status').filter({hasText: 'revoked'}).waitFor();
    await page.locator('#device-actions').filter({hasText: 'revoke'}).waitFor();
    await shot(page, 'desktop-5-revoked');
    const u = await update('192.0.2.61');
    expect(u.status === 1 && u.out === 'disabled', `update answered ${JSON.stringify(u)}`);
  });

  await check('restore with confirmation; the gateway accepts the next update', async () => {
    await page.getByRole('button', {exact: true, name: 'Restore'}).click();
    await page.getByRole('dialog').getByRole('button', {exact: true, name: 'Restore'}).click();
    await page.locator('#device-status').filter({hasText: 'active'}).waitFor();
    const u = await update('192.0.2.62');
    expect(u.status === 0 && u.out.startsWith('good 192.0.2.62'), `update answered ${JSON.stringify(u)}`);
    await page.reload();
    await page.locator('#device-actions').filter({hasText: 'restore'}).waitFor();
    await page.getByRole('cell', {name: '192.0.2.62'}).first().waitFor();
    await shot(page, 'desktop-6-restored');
  });

  await check('fleet overview: chart, counts, outbox', async () => {
    await page.getByRole('link', {exact: true, name: 'Fleet'}).click();
    await page.locator('svg.chart').waitFor();
    await page.locator('#outbox-depth').waitFor();
    const total = Number(await page.locator('#fleet-total').textContent());
    expect(total >= 1, `fleet total ${total}`);
    // The refused token of the first check is a failed authentication from
    // 127.0.0.1; the gateway adds those to the database every 5 s.
    let listed = false;
    for (let i = 0; i < 30 && !listed; i++) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, 1000));
        await page.reload();
        await page.locator('svg.chart').waitFor();
      }
      listed = (await page.locator('#failing-sources').textContent()).includes('127.0.0.1');
    }
    expect(listed, 'the failed login from 127.0.0.1 is not among the failing sources');
    await shot(page, 'desktop-7-fleet');
  });

  await check('a search of 30 devices comes in pages of 25', async () => {
    await page.getByRole('link', {exact: true, name: 'Devices'}).click();
    await page.getByLabel('MAC, host name, serial or address').fill(cfg.paging_q);
    await page.getByLabel('MAC, host name, serial or address').press('Enter');
    await page.locator('#result-count').filter({hasText: 'Devices 1–25 of 30'}).waitFor();
    expect(await page.locator('#results tbody tr').count() === 25, 'page 1 has not 25 rows');
    expect(await page.getByRole('button', {exact: true, name: '← Previous'}).isDisabled(), 'Previous enabled on page 1');
    await page.getByRole('button', {exact: true, name: 'Next →'}).click();
    await page.locator('#result-count').filter({hasText: 'Devices 26–30 of 30'}).waitFor();
    expect(await page.locator('#results tbody tr').count() === 5, 'page 2 has not 5 rows');
    expect(await page.getByRole('button', {exact: true, name: 'Next →'}).isDisabled(), 'Next enabled on the last page');
    await shot(page, 'desktop-8-page-2');
    await page.goBack();
    await page.locator('#result-count').filter({hasText: 'Devices 1–25 of 30'}).waitFor();
  });

  await check('log out forgets the token', async () => {
    await page.getByRole('button', {exact: true, name: 'Log out'}).click();
    await page.getByRole('heading', {name: 'Log in'}).waitFor();
    expect(await page.evaluate(() => sessionStorage.length) === 0, 'token still stored');
  });
  await context.close();

  const phone = await newPage(browser, {viewport: {width: 390, height: 844}, deviceScaleFactor: 2,
    isMobile: true, hasTouch: true});
  await check('phone: read token, search, device page without horizontal scrolling', async () => {
    const p = phone.page;
    await login(p, cfg.read_token);
    await p.getByLabel('MAC, host name, serial or address').fill(cfg.device_id);
    await p.keyboard.press('Enter');
    await p.locator('#result-count').filter({hasText: 'of 1'}).waitFor();
    await shot(p, 'phone-1-search');
    await p.getByRole('link', {exact: true, name: cfg.mac_display}).tap();
    await p.locator('#device-title').waitFor();
    expect(await p.getByRole('button', {exact: true, name: 'Revoke'}).count() === 0, 'a read token is offered revoke');
    const wide = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(wide <= 0, `page is ${wide} px wider than the phone`);
    await shot(p, 'phone-2-device');
    await p.getByRole('link', {exact: true, name: 'Fleet'}).tap();
    await p.locator('svg.chart').waitFor();
    const wide2 = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(wide2 <= 0, `fleet page is ${wide2} px wider than the phone`);
    await shot(p, 'phone-3-fleet');
  });
  await phone.context.close();

  await check('no console error, failed request or CSP violation', async () => {
    const real = problems.filter((m) => !m.includes('401'));
    expect(real.length === 0, real.join('\n'));
  });
} finally {
  await browser.close();
}
console.log(`console browser tests: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 ? 0 : 1);
