/**
 * RTMP end to end with real clients: ffmpeg publishes a live H.264+AAC pattern,
 * ffprobe/ffmpeg play it back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { allowGoodTokens, startBackend, type TestBackend } from '../helpers/backend.js';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import {
  ffmpegDecode,
  ffmpegPublish,
  ffprobePackets,
  isMonotonic,
  sleep,
  stopProcess,
} from '../helpers/clients.js';
import { inCI, skipWithout } from '../helpers/tools.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';
import { vlcPlay, vlcUsable } from '../helpers/vlc.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let backend: TestBackend;

before(async () => {
  if (skip) return;
  backend = await startBackend(allowGoodTokens);
  server = await startStreamgate(`
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play ${backend.url}; }
    template secure { prefix secure; input publish://; password p1; on_publish ${backend.url}; }
  `);
});

after(async () => {
  if (skip) return;
  const code = await server.stop();
  assert.equal(code, 0, 'streamgate exits 0 on SIGTERM');
  await backend.close();
});

test(
  'rtmp: ffmpeg publishes, ffprobe reads video and audio with monotonic timestamps',
  { skip, timeout: 60_000 },
  async () => {
    const rtmp = server.ports['rtmp'];
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/cam1?token=pub`);
    try {
      await sleep(1500);
      const played = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/live/cam1`, 3);
      assert.equal(played.code, 0, played.stderr);
      assert.ok(played.videoFrames >= 40, `video frames ${played.videoFrames}`);
      assert.ok(played.audioFrames >= 60, `audio frames ${played.audioFrames}`);
      assert.equal(played.firstVideoKey, true, 'first video packet is a keyframe');
      assert.ok(isMonotonic(played.videoDts), 'video dts monotonic');
      assert.ok(isMonotonic(played.audioDts), 'audio dts monotonic');
      const decoded = await ffmpegDecode(`rtmp://127.0.0.1:${rtmp}/live/cam1`, 2);
      assert.equal(decoded.code, 0, decoded.stderr);
      assert.ok(decoded.frames >= 40, `decoded ${decoded.frames} frames`);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtmp: two viewers at once, and a viewer joining mid-stream starts on a keyframe',
  { skip, timeout: 60_000 },
  async () => {
    const rtmp = server.ports['rtmp'];
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/two`);
    try {
      await sleep(2300); // mid-GOP: the publisher's GOP is 1 s
      const url = `rtmp://127.0.0.1:${rtmp}/live/two`;
      const [a, b] = await Promise.all([ffprobePackets(url, 3), ffprobePackets(url, 3)]);
      for (const r of [a, b]) {
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.videoFrames >= 40 && r.audioFrames >= 60, `frames v=${r.videoFrames} a=${r.audioFrames}`);
        assert.equal(r.firstVideoKey, true);
      }
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtmp: a viewer that stays through a publisher reconnect gets frames again',
  { skip, timeout: 60_000 },
  async () => {
    const rtmp = server.ports['rtmp'];
    const url = `rtmp://127.0.0.1:${rtmp}/live/again`;
    const first = ffmpegPublish(url);
    await sleep(1500);
    const viewing = ffprobePackets(url, 9, 40_000);
    await sleep(2500);
    await stopProcess(first);
    await sleep(1000);
    const second = ffmpegPublish(url);
    try {
      const r = await viewing;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(isMonotonic(r.videoDts), 'timestamps stay monotonic across the reconnect');
      const span = (r.videoDts.at(-1) ?? 0) - (r.videoDts[0] ?? 0);
      assert.ok(
        span >= 7,
        `viewer saw ${span.toFixed(1)} s of video, so frames came from the second publisher too`,
      );
    } finally {
      await stopProcess(second);
    }
  },
);

test(
  'rtmp: a denied play gets NetStream.Play.Failed and not one media byte',
  { skip, timeout: 60_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/paid/show`);
    try {
      await sleep(1500);
      const denied = await rtmpProbe(rtmp, 'paid', 'show?token=bad', { ms: 3000 });
      assert.deepEqual(
        denied.statuses.map((s) => [s.level, s.code]),
        [['error', 'NetStream.Play.Failed']],
      );
      assert.equal(denied.mediaMessages, 0);
      assert.equal(denied.closedByServer, true);
      const allowed = await rtmpProbe(rtmp, 'paid', 'show?token=good1', { ms: 2500 });
      assert.deepEqual(
        allowed.statuses.map((s) => s.code),
        ['NetStream.Play.Reset', 'NetStream.Play.Start'],
      );
      assert.ok(allowed.mediaMessages > 20, `allowed viewer got ${allowed.mediaMessages} media messages`);
      const call = backend.calls.find((q) => q.get('token') === 'bad');
      assert.equal(call?.get('name'), 'paid/show');
      assert.equal(call?.get('proto'), 'rtmp');
      assert.equal(call?.get('ip'), '127.0.0.1');
      const ffprobeDenied = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/paid/show?token=bad2`, 2);
      assert.notEqual(ffprobeDenied.code, 0);
      assert.equal(ffprobeDenied.videoFrames, 0);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtmp: the token on the connect URL is used when the stream name has none',
  { skip, timeout: 30_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/paid/tc`);
    try {
      await sleep(1500);
      const r = await rtmpProbe(rtmp, 'paid?token=good-connect', 'tc', { ms: 2000 });
      assert.ok(
        r.statuses.some((s) => s.code === 'NetStream.Play.Start'),
        JSON.stringify(r.statuses),
      );
      const r2 = await rtmpProbe(rtmp, 'paid?token=good-connect', 'tc?token=bad-name', { ms: 2000 });
      assert.deepEqual(
        r2.statuses.map((s) => s.code),
        ['NetStream.Play.Failed'],
        'the stream-name query wins',
      );
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtmp: garbage bytes get the client disconnected and the server keeps serving',
  { skip, timeout: 30_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    const { connect } = await import('node:net');
    const s = connect(rtmp, '127.0.0.1');
    await once(s, 'connect');
    s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await once(s, 'close');
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/after-garbage`);
    try {
      await sleep(1500);
      const r = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/live/after-garbage`, 1);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtmp: VLC plays a live RTMP stream (video decoded and displayed)',
  { skip, timeout: 60_000 },
  async (t) => {
    const usable = vlcUsable();
    if (!usable.ok) {
      if (inCI) throw new Error(`CI=true but VLC cannot run: ${usable.why}`);
      t.skip(usable.why);
      return;
    }
    const rtmp = server.ports['rtmp'];
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/vlc`);
    try {
      await sleep(1500);
      const stats = await vlcPlay(`rtmp://127.0.0.1:${rtmp}/live/vlc`, 5);
      assert.ok(stats.opened, stats.log.slice(-2000));
      assert.ok(
        stats.videoDecoded > 0 && stats.framesDisplayed > 0,
        JSON.stringify({ ...stats, log: undefined }),
      );
      assert.ok(stats.audioDecoded > 0, `audio decoded ${stats.audioDecoded}`);
    } finally {
      await stopProcess(pub);
    }
  },
);

test('rtmp: publish password and on_publish (AUTH-SPEC §12 item 24)', { skip, timeout: 60_000 }, async () => {
  const rtmp = server.ports['rtmp'] ?? 0;
  const methods: string[] = [];
  const previous = backend.handler;
  backend.handler = (q, req) => {
    methods.push(`${req.method} ${q.get('request_type')} ${q.get('name')}`);
    return previous(q, req);
  };
  try {
    const noPassword = await rtmpProbe(rtmp, 'secure', 'cam?token=good-pub', { kind: 'publish', ms: 1500 });
    assert.deepEqual(
      noPassword.statuses.map((s) => [s.level, s.code]),
      [['error', 'NetStream.Publish.BadName']],
    );
    assert.equal(methods.length, 0, 'the password is checked before on_publish');
    const badToken = await rtmpProbe(rtmp, 'secure', 'cam?password=p1&token=bad', {
      kind: 'publish',
      ms: 1500,
    });
    assert.deepEqual(
      badToken.statuses.map((s) => s.code),
      ['NetStream.Publish.BadName'],
    );
    const pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/secure/cam?password=p1&token=good-pub`);
    try {
      await sleep(1500);
      assert.ok(methods.includes('POST new_session secure/cam'), methods.join(', '));
      const played = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/secure/cam`, 1);
      assert.equal(played.code, 0, played.stderr);
    } finally {
      await stopProcess(pub);
    }
  } finally {
    backend.handler = previous;
  }
});
