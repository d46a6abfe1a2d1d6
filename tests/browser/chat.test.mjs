// Parley's web client in a real browser: Debian's Chromium driven by playwright-core
// (never a browser download). Two people register, add each other and chat; one goes
// offline and misses messages, comes back and sees them in order with none twice; a
// send whose connection drops before its ack is delivered exactly once.
//
// Run by `cargo test --test browser` (which starts the server and sets PARLEY_URL), or by
// hand: `PARLEY_URL=http://127.0.0.1:8080 node --test tests/browser/chat.test.mjs`.
// Screenshots go to SCREENSHOT_DIR (default target/browser-screenshots).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.PARLEY_URL || 'http://127.0.0.1:8080';
const SHOTS = process.env.SCREENSHOT_DIR || join(import.meta.dirname, '../../target/browser-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 20000;
const run = Date.now().toString(36);

let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
});

/** A person at a browser: a context (its own localStorage) and a page. */
async function person(name, viewport) {
  const context = await browser.newContext({ viewport, baseURL: BASE });
  const errors = [];
  const person = { name, email: `${name.toLowerCase()}-${run}@example.com`, context, errors };
  // Every WebSocket goes through here, so a test can cut it, block it, or lose acks.
  person.net = { blocked: false, dropAcks: false, open: new Set() };
  await context.routeWebSocket(/\/ws/, (ws) => {
    if (person.net.blocked) {
      ws.close();
      return;
    }
    const server = ws.connectToServer();
    const link = { ws, server };
    person.net.open.add(link);
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (person.net.dropAcks && JSON.parse(m).type === 'ack') return;
      ws.send(m);
    });
    ws.onClose(() => person.net.open.delete(link));
    server.onClose(() => person.net.open.delete(link));
  });
  person.page = await openPage(person);
  return person;
}

async function openPage(p) {
  const page = await p.context.newPage();
  page.on('pageerror', (e) => p.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') p.errors.push(m.text());
  });
  await page.goto('/');
  return page;
}

/** Cuts every live WebSocket of `p` (as a network loss would). */
async function cut(p) {
  for (const { ws, server } of p.net.open) {
    await server.close().catch(() => {});
    await ws.close().catch(() => {});
  }
  p.net.open.clear();
}

async function register(p) {
  const page = p.page;
  await page.getByRole('button', { name: 'New here? Create an account' }).click();
  await page.getByLabel('Name', { exact: true }).fill(p.name);
  await page.getByLabel('Email', { exact: true }).fill(p.email);
  await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await online(page);
}

const online = (page) => page.locator('#status[data-state="online"]').waitFor({ timeout: WAIT });

/** The contents of the open chat's messages, in the order shown. */
async function shown(page) {
  return page.locator('#messages > li .body').allTextContents();
}

async function say(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** Waits until the open chat shows exactly `expected`, acked (no pending one left). */
async function expectChat(page, expected) {
  await page.waitForFunction(
    (want) => {
      const rows = [...document.querySelectorAll('#messages > li')];
      return rows.length === want.length && rows.every((r, i) =>
        r.querySelector('.body').textContent === want[i] && r.dataset.seq);
    },
    expected,
    { timeout: WAIT },
  ).catch(async () => {
    assert.deepEqual(await shown(page), expected);
  });
  const seqs = await page.locator('#messages > li').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  assert.deepEqual(seqs, expected.map((_, i) => i + 1), 'shown in seq order, each once');
}

test('two people chat, one misses messages offline and catches up in order, with nothing twice', async () => {
  const ada = await person('Ada', { width: 1280, height: 800 });
  const bob = await person('Bob', { width: 390, height: 844 });

  await ada.page.screenshot({ path: join(SHOTS, 'login-desktop.png') });
  await register(ada);
  await register(bob);

  // Ada adds Bob by email and writes first.
  await ada.page.getByLabel('Add a contact by email').fill(bob.email);
  await ada.page.getByRole('button', { name: 'Add', exact: true }).click();
  await ada.page.getByRole('button', { name: /^Bob/ }).click();
  await say(ada.page, 'Hello Bob');
  await expectChat(ada.page, ['Hello Bob']);

  // Bob was never told about the conversation: it arrives live, with an unread count.
  const adaInBobsList = bob.page.getByRole('button', { name: /^Ada/ });
  await adaInBobsList.getByText('1', { exact: true }).waitFor({ timeout: WAIT });
  await bob.page.screenshot({ path: join(SHOTS, 'list-phone.png') });
  await adaInBobsList.click();
  await expectChat(bob.page, ['Hello Bob']);
  await say(bob.page, 'Hi Ada');
  await expectChat(ada.page, ['Hello Bob', 'Hi Ada']);

  // Bob goes away (his page closes); Ada writes three more.
  await bob.page.close();
  for (const text of ['one', 'two', 'three']) await say(ada.page, text);
  await expectChat(ada.page, ['Hello Bob', 'Hi Ada', 'one', 'two', 'three']);

  // Bob comes back: still logged in, three unread, and the chat in order.
  bob.page = await openPage(bob);
  await online(bob.page);
  const back = bob.page.getByRole('button', { name: /^Ada/ });
  await back.getByText('3', { exact: true }).waitFor({ timeout: WAIT });
  await back.click();
  await expectChat(bob.page, ['Hello Bob', 'Hi Ada', 'one', 'two', 'three']);

  // Bob's connection drops; he keeps typing; it is sent once he is back.
  bob.net.blocked = true;
  await cut(bob);
  await bob.page.locator('#status:not([data-state="online"])').waitFor({ timeout: WAIT });
  await say(bob.page, 'typed while offline');
  await bob.page.locator('#messages > li.pending').waitFor({ timeout: WAIT });
  bob.net.blocked = false;
  await bob.page.evaluate(() => window.dispatchEvent(new Event('online')));
  await online(bob.page);
  const six = ['Hello Bob', 'Hi Ada', 'one', 'two', 'three', 'typed while offline'];
  await expectChat(bob.page, six);
  await expectChat(ada.page, six);

  // Ada's send is stored but its ack is lost with the connection: after the reconnect
  // she resends it with the same clientId, and it still exists once, for both.
  ada.net.dropAcks = true;
  await say(ada.page, 'acked late');
  const seven = [...six, 'acked late'];
  await expectChat(bob.page, seven);
  await ada.page.locator('#messages > li.pending').waitFor({ timeout: WAIT });
  ada.net.dropAcks = false;
  await cut(ada);
  await online(ada.page);
  await expectChat(ada.page, seven);
  await bob.page.waitForTimeout(500);
  await expectChat(bob.page, seven);

  await ada.page.screenshot({ path: join(SHOTS, 'chat-desktop.png') });
  await bob.page.screenshot({ path: join(SHOTS, 'chat-phone.png') });
  assert.deepEqual(ada.errors, [], 'no script error or CSP violation on Ada\'s page');
  assert.deepEqual(bob.errors, [], 'no script error or CSP violation on Bob\'s page');
});
