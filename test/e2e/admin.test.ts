/**
 * The admin UI in real headless Chromium: it lists the streams and sessions from the API
 * and its player plays a stream with hls.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { startStreamgate } from '../helpers/streamgate.js';
import { requireTool } from '../helpers/tools.js';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

test('admin UI: lists demo and plays it with hls.js in Chromium', { timeout: 90_000 }, async (t) => {
  if (!requireTool(t, CHROMIUM, ['--version'])) return;
  const server = await startStreamgate('stream demo { input fake://fake; }');
  const browser = await launchChromium();
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`http://127.0.0.1:${server.ports['http']}/admin/`);
    const play = page.locator('#streams tbody tr', { hasText: 'demo' }).getByRole('button', { name: 'play' });
    await play.waitFor({ timeout: 20_000 });
    await play.click();
    await page.waitForFunction(
      'document.querySelector("video") && document.querySelector("video").currentTime > 1',
      undefined,
      {
        timeout: 30_000,
      },
    );
    await page.locator('#sessions tbody tr', { hasText: 'hls' }).first().waitFor({ timeout: 10_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}admin-ui.png` });
    const statusText = await page.locator('#status').textContent();
    assert.match(statusText ?? '', /updated/);
  } finally {
    await browser.close();
    assert.equal(await server.stop(), 0);
  }
});

test(
  'admin UI and API are loopback-only without edit_auth, Basic-auth protected with it',
  { timeout: 30_000 },
  async () => {
    const server = await startStreamgate('edit_auth admin s3cret;\nstream demo { input fake://fake; }');
    try {
      const base = `http://127.0.0.1:${server.ports['http']}`;
      assert.equal((await fetch(`${base}/admin/`)).status, 401);
      assert.equal((await fetch(`${base}/api/streams`)).status, 401);
      const auth = { Authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` };
      const ok = await fetch(`${base}/admin/`, { headers: auth });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /streamgate/);
      const wrong = { Authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` };
      assert.equal((await fetch(`${base}/api/streams`, { headers: wrong })).status, 401);
      const streams = (await (await fetch(`${base}/api/streams`, { headers: auth })).json()) as {
        streams: { name: string }[];
      };
      assert.deepEqual(
        streams.streams.map((s) => s.name),
        ['demo'],
      );
    } finally {
      await server.stop();
    }
  },
);
