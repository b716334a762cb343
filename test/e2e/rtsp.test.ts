/**
 * RTSP end to end with real clients: ffmpeg publishes over RTSP (ANNOUNCE/RECORD, TCP
 * interleaved) or RTMP; ffprobe plays over RTSP (TCP interleaved and UDP), RTMP and HLS.
 * Denials are checked with a raw TCP client that reads the status line and every byte after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffmpegPublish, ffprobePackets, isMonotonic, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let backend: TestBackend;
let rtsp = 0;
let rtmp = 0;
let http = 0;

before(async () => {
  if (skip) return;
  backend = await startBackend((q) =>
    q.get('token') === 'moved'
      ? { status: 302, headers: { Location: 'rtsp://elsewhere.example/backup' } }
      : { status: q.get('token')?.startsWith('good') ? 200 : 403 },
  );
  server = await startStreamgate(
    `
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play ${backend.url}; }
    template secret { prefix secret; input publish://; password s3cret; }
  `,
    { listeners: 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\nrtsp 127.0.0.1:0;\n' },
  );
  rtsp = server.ports['rtsp'] ?? 0;
  rtmp = server.ports['rtmp'] ?? 0;
  http = server.ports['http'] ?? 0;
});

after(async () => {
  if (skip) return;
  assert.equal(await server.stop(), 0, 'streamgate exits 0 on SIGTERM');
  await backend.close();
});

/** ffmpeg's RTSP demuxer leaves the first video packet's dts unset (N/A): only known values must be ordered. */
function known(values: number[]): number[] {
  return values.filter((v) => Number.isFinite(v));
}

interface RawExchange {
  status: string;
  headers: string;
  /** Bytes after the first response: interleaved RTP would start with `$`. */
  after: number;
  closedByServer: boolean;
}

/** Sends one request on a raw TCP connection and records the answer and everything after it. */
async function rawRequest(
  method: string,
  url: string,
  extra: string[] = [],
  body = '',
  ms = 2000,
): Promise<RawExchange> {
  const s = connect(rtsp, '127.0.0.1');
  await once(s, 'connect');
  const lines = [`${method} ${url} RTSP/1.0`, 'CSeq: 1', 'User-Agent: raw-test', ...extra];
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  s.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  let closedByServer = false;
  const closed = once(s, 'close').then(() => (closedByServer = true));
  await Promise.race([closed, sleep(ms)]);
  s.destroy();
  const all = Buffer.concat(chunks);
  const end = all.indexOf('\r\n\r\n');
  const head = all.subarray(0, end < 0 ? all.length : end).toString('latin1');
  const length = Number(/Content-Length: (\d+)/i.exec(head)?.[1] ?? 0);
  return {
    status: head.split('\r\n')[0] ?? '',
    headers: head,
    after: end < 0 ? 0 : all.length - (end + 4 + length),
    closedByServer,
  };
}

const ANNOUNCE_SDP = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=No Name',
  't=0 0',
  'm=audio 0 RTP/AVP 97',
  'a=rtpmap:97 MPEG4-GENERIC/44100/1',
  'a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=120856E500',
  'a=control:streamid=0',
  '',
].join('\r\n');

test(
  'rtsp: ffmpeg publishes over RTSP (tcp); ffprobe reads it over RTSP tcp and udp, RTMP and HLS',
  { skip, timeout: 90_000 },
  async () => {
    const pub = ffmpegPublish(`rtsp://127.0.0.1:${rtsp}/live/cam1?token=pub`, { format: 'rtsp' });
    try {
      await sleep(2000);
      const url = `rtsp://127.0.0.1:${rtsp}/live/cam1?token=viewer`;
      for (const transport of ['tcp', 'udp']) {
        const r = await ffprobePackets(url, 3, 20_000, ['-rtsp_transport', transport]);
        assert.equal(r.code, 0, `${transport}: ${r.stderr}`);
        assert.ok(r.videoFrames >= 40, `${transport}: video frames ${r.videoFrames}`);
        assert.ok(r.audioFrames >= 60, `${transport}: audio frames ${r.audioFrames}`);
        assert.equal(r.firstVideoKey, true, `${transport}: first video packet is a keyframe`);
        assert.ok(isMonotonic(known(r.videoDts)), `${transport}: video dts monotonic`);
        assert.ok(isMonotonic(known(r.audioDts)), `${transport}: audio dts monotonic`);
      }
      const viaRtmp = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/live/cam1`, 3);
      assert.equal(viaRtmp.code, 0, viaRtmp.stderr);
      assert.ok(
        viaRtmp.videoFrames >= 40 && viaRtmp.audioFrames >= 60,
        `rtmp v=${viaRtmp.videoFrames} a=${viaRtmp.audioFrames}`,
      );
      assert.ok(isMonotonic(viaRtmp.videoDts) && isMonotonic(viaRtmp.audioDts), 'rtmp timestamps monotonic');
      const viaHls = await ffprobePackets(`http://127.0.0.1:${http}/live/cam1/index.m3u8`, 2, 30_000);
      assert.equal(viaHls.code, 0, viaHls.stderr);
      assert.ok(
        viaHls.videoFrames > 0 && viaHls.audioFrames > 0,
        `hls v=${viaHls.videoFrames} a=${viaHls.audioFrames}`,
      );
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp: ffmpeg publishes over RTMP; ffprobe plays over RTSP with video and audio and monotonic timestamps',
  { skip, timeout: 60_000 },
  async () => {
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/fromrtmp`);
    try {
      await sleep(2300); // mid-GOP: the publisher's GOP is 1 s, so the viewer starts from the cache
      const r = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/live/fromrtmp`, 3, 20_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.videoFrames >= 40, `video frames ${r.videoFrames}`);
      assert.ok(r.audioFrames >= 60, `audio frames ${r.audioFrames}`);
      assert.equal(r.firstVideoKey, true);
      assert.ok(isMonotonic(known(r.videoDts)), 'video dts monotonic');
      assert.ok(isMonotonic(known(r.audioDts)), 'audio dts monotonic');
      // Audio and video come out aligned (RTCP sender reports): their first timestamps are close.
      const v0 = known(r.videoDts)[0] ?? 0;
      const a0 = r.audioDts[0] ?? 0;
      assert.ok(Math.abs(v0 - a0) < 1, `first video ${v0} and audio ${a0} within 1 s`);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp: a denied token gets RTSP/1.0 403 on DESCRIBE and no RTP byte; a backend 302 becomes 302 + Location',
  { skip, timeout: 60_000 },
  async () => {
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/paid/show`);
    try {
      await sleep(1500);
      const denied = await rawRequest('DESCRIBE', `rtsp://127.0.0.1:${rtsp}/paid/show?token=bad`, [
        'Accept: application/sdp',
      ]);
      assert.equal(denied.status, 'RTSP/1.0 403 Forbidden');
      assert.match(denied.headers, /CSeq: 1/);
      assert.equal(denied.after, 0, 'nothing after the 403');
      assert.equal(denied.closedByServer, true);
      const call = backend.callsFor('bad')[0];
      assert.equal(call?.get('proto'), 'rtsp');
      assert.equal(call?.get('name'), 'paid/show');
      assert.equal(call?.get('ip'), '127.0.0.1');
      assert.equal(call?.get('user_agent'), 'raw-test');

      const moved = await rawRequest('DESCRIBE', `rtsp://127.0.0.1:${rtsp}/paid/show?token=moved`);
      assert.equal(moved.status, 'RTSP/1.0 302 Moved Temporarily');
      assert.match(moved.headers, /Location: rtsp:\/\/elsewhere\.example\/backup/);

      const allowed = await rawRequest('DESCRIBE', `rtsp://127.0.0.1:${rtsp}/paid/show?token=good1`);
      assert.equal(allowed.status, 'RTSP/1.0 200 OK');
      assert.match(allowed.headers, /Content-Type: application\/sdp/);

      const probeDenied = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/paid/show?token=bad2`, 2, 20_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      assert.notEqual(probeDenied.code, 0);
      assert.equal(probeDenied.videoFrames, 0);
      const probeAllowed = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/paid/show?token=good2`, 2, 20_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      assert.equal(probeAllowed.code, 0, probeAllowed.stderr);
      assert.ok(probeAllowed.videoFrames > 20);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp: DESCRIBE of a stream nobody publishes gets 404 after a short wait',
  { skip, timeout: 30_000 },
  async () => {
    const r = await rawRequest('DESCRIBE', `rtsp://127.0.0.1:${rtsp}/live/nobody`, [], '', 8000);
    assert.equal(r.status, 'RTSP/1.0 404 Not Found');
  },
);

test(
  'rtsp: publishing to a password-protected stream needs the password (query or Basic auth)',
  { skip, timeout: 60_000 },
  async () => {
    const headers = ['Content-Type: application/sdp'];
    const wrong = await rawRequest(
      'ANNOUNCE',
      `rtsp://127.0.0.1:${rtsp}/secret/cam?password=nope`,
      headers,
      ANNOUNCE_SDP,
    );
    assert.equal(wrong.status, 'RTSP/1.0 403 Forbidden');
    const none = await rawRequest('ANNOUNCE', `rtsp://127.0.0.1:${rtsp}/secret/cam`, headers, ANNOUNCE_SDP);
    assert.equal(none.status, 'RTSP/1.0 401 Unauthorized');
    assert.match(none.headers, /WWW-Authenticate: Basic realm="streamgate"/);
    const wrongBasic = await rawRequest(
      'ANNOUNCE',
      `rtsp://127.0.0.1:${rtsp}/secret/cam`,
      [...headers, `Authorization: Basic ${Buffer.from('pub:nope').toString('base64')}`],
      ANNOUNCE_SDP,
    );
    assert.equal(wrongBasic.status, 'RTSP/1.0 403 Forbidden');

    // ffmpeg sends rtsp://user:pass@… credentials after the 401 challenge.
    const pub = ffmpegPublish(`rtsp://pub:s3cret@127.0.0.1:${rtsp}/secret/cam`, { format: 'rtsp' });
    try {
      await sleep(2000);
      const r = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/secret/cam`, 2, 20_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.videoFrames > 20 && r.audioFrames > 20, `v=${r.videoFrames} a=${r.audioFrames}`);
    } finally {
      await stopProcess(pub);
    }
    const pub2 = ffmpegPublish(`rtsp://127.0.0.1:${rtsp}/secret/cam2?password=s3cret`, { format: 'rtsp' });
    try {
      await sleep(2000);
      const r = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/secret/cam2`, 1, 20_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await stopProcess(pub2);
    }
  },
);

test('rtsp: a second publisher to the same stream gets 409', { skip, timeout: 30_000 }, async () => {
  const pub = ffmpegPublish(`rtsp://127.0.0.1:${rtsp}/live/busy`, { format: 'rtsp' });
  try {
    await sleep(1500);
    const r = await rawRequest(
      'ANNOUNCE',
      `rtsp://127.0.0.1:${rtsp}/live/busy`,
      ['Content-Type: application/sdp'],
      ANNOUNCE_SDP,
    );
    assert.equal(r.status, 'RTSP/1.0 409 Conflict');
  } finally {
    await stopProcess(pub);
  }
});

test(
  'rtsp: garbage bytes get the client disconnected and the server keeps serving',
  { skip, timeout: 30_000 },
  async () => {
    const s = connect(rtsp, '127.0.0.1');
    await once(s, 'connect');
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    s.resume(); // read the 400 answer, so the server's FIN is seen and the socket closes
    await once(s, 'close');
    const r = await rawRequest('OPTIONS', `rtsp://127.0.0.1:${rtsp}/live/x`);
    assert.equal(r.status, 'RTSP/1.0 200 OK');
    assert.match(r.headers, /Public: .*DESCRIBE/);
  },
);

test(
  'rtsp: a re-check that denies closes a playing RTSP client (AUTH-SPEC §4.4)',
  { skip, timeout: 60_000 },
  async () => {
    const previous = backend.handler;
    backend.handler = (q, req) =>
      q.get('token') === 'good-recheck'
        ? q.get('request_type') === 'update_session'
          ? { status: 403 }
          : { status: 200, headers: { 'X-AuthDuration': '2' } }
        : previous(q, req);
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/paid/recheck`);
    try {
      await sleep(1500);
      const started = Date.now();
      const r = await ffprobePackets(`rtsp://127.0.0.1:${rtsp}/paid/recheck?token=good-recheck`, 10, 30_000, [
        '-rtsp_transport',
        'tcp',
      ]);
      const elapsed = Date.now() - started;
      assert.ok(r.videoFrames > 0, 'it played before the re-check');
      assert.ok(elapsed < 8000, `cut off after ${elapsed} ms instead of playing 10 s`);
      const update = backend.callsFor('good-recheck').find((q) => q.get('request_type') === 'update_session');
      assert.equal(update?.get('proto'), 'rtsp');
    } finally {
      backend.handler = previous;
      await stopProcess(pub);
    }
  },
);
