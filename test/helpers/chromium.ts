/**
 * Headless Debian Chromium playing an HLS URL with hls.js (lab/README.md §5): serves a
 * tiny page plus node_modules/hls.js on 127.0.0.1:0, samples `video.currentTime` once a
 * second and saves a screenshot. Name resolution is mapped to NOTFOUND except loopback,
 * so the browser cannot reach anything but the server under test.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>hls.js</title>
<style>body{margin:0;background:#222}video{width:640px;height:480px;background:#000;display:block}</style></head>
<body><video id="v" muted autoplay playsinline></video><script src="/hls.min.js"></script><script>
const v = document.getElementById('v');
window.probe = { errors: [], events: [] };
window.startHls = (url) => {
  const hls = new Hls({ lowLatencyMode: false });
  hls.on(Hls.Events.MANIFEST_PARSED, () => window.probe.events.push('MANIFEST_PARSED'));
  hls.on(Hls.Events.FRAG_BUFFERED, (e, d) => window.probe.events.push('FRAG_BUFFERED ' + d.frag.sn));
  hls.on(Hls.Events.ERROR, (e, d) => window.probe.errors.push(d.type + ':' + d.details + (d.fatal ? ':FATAL' : '')));
  hls.loadSource(url); hls.attachMedia(v);
  v.play().catch((e) => window.probe.errors.push('play(): ' + e.message));
};
</script></body></html>`;

/**
 * Headless Chromium that can reach loopback only; close the returned context when done.
 * `httpCredentials` answers Basic auth challenges (an admin logged in with edit_auth).
 */
export async function launchChromium(
  options: { httpCredentials?: { username: string; password: string } } = {},
): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  const userDir = mkdtempSync(join(tmpdir(), 'chromium-udd-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    ...(options.httpCredentials ? { httpCredentials: options.httpCredentials } : {}),
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-domain-reliability', '--no-pings', '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    ], // prettier-ignore
  });
  ctx.on('close', () => {
    try {
      rmSync(userDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch {
      // Chromium's helpers may still be writing; a leftover temp profile is harmless.
    }
  });
  return ctx;
}

export interface HlsPlayResult {
  ok: boolean;
  samples: { t: number; decoded: number; width: number }[];
  errors: string[];
  events: string[];
  screenshot: string;
}

interface Probe {
  errors: string[];
  events: string[];
}

/** Plays `url` for `seconds` and reports whether currentTime advanced by at least 1 s. */
export async function playHlsInChromium(
  url: string,
  seconds: number,
  screenshot: string,
): Promise<HlsPlayResult> {
  const require = createRequire(import.meta.url);
  const hlsJs = readFileSync(require.resolve('hls.js/dist/hls.min.js'));
  const page = createServer((req, res) => {
    if (req.url === '/hls.min.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript' }).end(hlsJs);
    } else if (req.url === '/') res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
    else res.writeHead(404).end();
  });
  page.listen(0, '127.0.0.1');
  await once(page, 'listening');
  const pagePort = (page.address() as AddressInfo).port;
  const ctx = await launchChromium();
  try {
    const tab = ctx.pages()[0] ?? (await ctx.newPage());
    await tab.goto(`http://127.0.0.1:${pagePort}/`);
    // String expressions: the test tsconfig has no DOM lib, and these run in the page anyway.
    await tab.evaluate(`window.startHls(${JSON.stringify(url)})`);
    const samples: HlsPlayResult['samples'] = [];
    for (let i = 0; i < seconds; i++) {
      await tab.waitForTimeout(1000);
      samples.push(
        (await tab.evaluate(
          `(() => { const v = document.getElementById('v'); const q = v.getVideoPlaybackQuality();
            return { t: v.currentTime, decoded: q.totalVideoFrames, width: v.videoWidth }; })()`,
        )) as HlsPlayResult['samples'][number],
      );
    }
    mkdirSync(dirname(screenshot), { recursive: true });
    await tab.screenshot({ path: screenshot });
    const probe = (await tab.evaluate('window.probe')) as Probe;
    const first = samples[0];
    const last = samples.at(-1);
    const ok = !!first && !!last && last.t - first.t >= 1 && last.decoded > 0 && last.width > 0;
    return { ok, samples, errors: probe.errors, events: probe.events, screenshot };
  } finally {
    await ctx.close().catch(() => undefined);
    page.close();
  }
}
