/**
 * The admin UI in real headless Chromium, logged in with edit_auth Basic credentials: it sees
 * a stream go live (an ffmpeg RTMP publisher) and a viewer's session appear over the live feed
 * (Server-Sent Events, no reload), kicks it and sees it gone, bans another and sees the ban,
 * and plays a stream with hls.js through an admin view token. Screenshots go to test-artifacts/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { startStreamgate } from '../helpers/streamgate.js';
import { requireTool } from '../helpers/tools.js';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { ffmpegPublish, stopProcess } from '../helpers/clients.js';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const AUTH = { Authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` };

/** An HTTP MPEG-TS viewer that reads until it is cut off. */
function tsViewer(url: string): ChildProcess {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', url, '-c', 'copy', '-f', 'null', '-'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

test(
  'admin UI: logs in, sees a stream go live and a session appear, kicks and bans, plays a stream',
  { timeout: 150_000 },
  async (t) => {
    if (!requireTool(t, CHROMIUM, ['--version']) || !requireTool(t, 'ffmpeg')) return;
    const server = await startStreamgate(
      'edit_auth admin s3cret;\ntemplate live { prefix live; input publish://; }\nstream demo { input fake://fake; }',
    );
    const http = server.ports['http'] ?? 0;
    const base = `http://127.0.0.1:${http}`;
    const procs: ChildProcess[] = [];
    const browser = await launchChromium({ httpCredentials: { username: 'admin', password: 's3cret' } });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.goto(`${base}/admin/`);
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 15_000 });
      mkdirSync(ARTIFACTS, { recursive: true });

      // A publisher goes live: the row turns to publishing with a bitrate, without a reload.
      procs.push(ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/live/cam1`));
      const cam = page.locator('#streams tbody tr[data-key="live/cam1"]');
      await cam.locator('td', { hasText: 'publishing' }).waitFor({ timeout: 30_000 });
      await cam.locator('td', { hasText: 'kbit/s' }).waitFor({ timeout: 10_000 });

      // A viewer's session appears in the table; kick closes it and the row goes.
      const viewer = tsViewer(`${base}/live/cam1/mpegts`);
      procs.push(viewer);
      const row = page.locator('#sessions tbody tr', { hasText: 'tshttp' });
      await row.first().waitFor({ timeout: 20_000 });
      await cam.locator('td', { hasText: 'tshttp: 1' }).waitFor({ timeout: 10_000 });
      await page.screenshot({ path: `${ARTIFACTS}admin-live-session.png`, fullPage: true });
      await row.first().getByRole('button', { name: 'kick' }).click();
      await row.first().waitFor({ state: 'detached', timeout: 10_000 });
      const code =
        viewer.exitCode ??
        (
          (await Promise.race([
            once(viewer, 'exit'),
            new Promise((r) => setTimeout(() => r([null]), 15_000)),
          ])) as [number | null]
        )[0];
      assert.notEqual(code, null, 'the kicked viewer was cut off');
      const history = (await (
        await fetch(`${base}/api/history?name=live/cam1`, { headers: AUTH })
      ).json()) as {
        history: { proto: string; close_reason: string }[];
      };
      assert.ok(history.history.some((h) => h.proto === 'tshttp' && h.close_reason === 'kicked'));

      // Ban: the session goes and its identity shows in the ban list.
      procs.push(tsViewer(`${base}/live/cam1/mpegts?token=banme`));
      await row.first().waitFor({ timeout: 20_000 });
      await row.first().getByRole('button', { name: 'ban' }).click();
      await row.first().waitFor({ state: 'detached', timeout: 10_000 });
      await page.locator('#bans tbody tr', { hasText: 'admin_ban' }).waitFor({ timeout: 10_000 });
      const again = await fetch(`${base}/live/cam1/mpegts?token=banme`);
      assert.equal(again.status, 403, 'the banned identity is refused');
      await again.body?.cancel();

      // The player: hls.js in the page, through an admin view token.
      await page.locator('#streams tbody tr[data-key="demo"]').getByRole('button', { name: 'play' }).click();
      await page.waitForFunction(
        'document.querySelector("video") && document.querySelector("video").currentTime > 1',
        undefined,
        { timeout: 45_000 },
      );
      await page.locator('#sessions tbody tr', { hasText: 'hls' }).first().waitFor({ timeout: 10_000 });
      await page.screenshot({ path: `${ARTIFACTS}admin-ui.png`, fullPage: true });
    } finally {
      await browser.close();
      await Promise.all(procs.map((p) => stopProcess(p)));
      assert.equal(await server.stop(), 0);
    }
  },
);

test(
  'admin UI and API are loopback-only without edit_auth, Basic-auth protected with it',
  { timeout: 30_000 },
  async () => {
    const server = await startStreamgate('edit_auth admin s3cret;\nstream demo { input fake://fake; }');
    try {
      const base = `http://127.0.0.1:${server.ports['http']}`;
      assert.equal((await fetch(`${base}/admin/`)).status, 401);
      const denied = await fetch(`${base}/api/streams`);
      assert.equal(denied.status, 401);
      assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'unauthorized');
      const ok = await fetch(`${base}/admin/`, { headers: AUTH });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /streamgate/);
      const wrong = { Authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` };
      assert.equal((await fetch(`${base}/api/streams`, { headers: wrong })).status, 401);
      const streams = (await (await fetch(`${base}/api/streams`, { headers: AUTH })).json()) as {
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
