import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Amf0Value } from '../../../../src/media/amf0.js';
import type { Denial } from '../../../../src/sessions/types.js';
import { ChunkReader, type RtmpMessage } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { RtmpProtocolError } from '../../../../protocols/rtmp/wire/errors.js';
import { HANDSHAKE_PACKET_BYTES } from '../../../../protocols/rtmp/wire/handshake.js';
import { MessageType, command, decodeCommand } from '../../../../protocols/rtmp/wire/messages.js';
import {
  chunkReaderLimits,
  PUBLISH_IDLE_MS,
  RtmpSessionMachine,
  type RtmpAction,
} from '../../../../protocols/rtmp/session.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { OUT_CHUNK_SIZE } from '../../../../protocols/rtmp/egress.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

const PUBLISH_CAPTURE = readFileSync(new URL('../../../fixtures/rtmp/ffmpeg-publish.bin', import.meta.url));
const PLAY_CAPTURE = readFileSync(new URL('../../../fixtures/rtmp/ffmpeg-play.bin', import.meta.url));

const IP = '192.0.2.7';
const fixedRandom = (n: number): Buffer => Buffer.alloc(n, 0xab);

function c0c1(): Buffer {
  const c1 = Buffer.alloc(HANDSHAKE_PACKET_BYTES);
  for (let i = 0; i < c1.length; i++) c1[i] = i & 0xff;
  return Buffer.concat([Buffer.of(3), c1]);
}
const C2 = Buffer.alloc(HANDSHAKE_PACKET_BYTES, 0x5a);

/** What the server said, decoded the way a client reads it (the server's Set Chunk Size applies). */
class ServerSide {
  private readonly reader = new ChunkReader(READER_LIMITS);
  readonly messages: RtmpMessage[] = [];

  take(actions: RtmpAction[]): RtmpAction[] {
    for (const a of actions) if (a.type === 'write') this.messages.push(...this.reader.push(a.bytes));
    return actions;
  }

  commands(): { name: string; txId: number; args: Amf0Value[]; streamId: number; csid: number }[] {
    return this.messages
      .filter((m) => m.type === MessageType.CommandAmf0)
      .map((m) => ({ ...decodeCommand(m), streamId: m.streamId, csid: m.csid }));
  }

  /** `[level, code, description]` of every onStatus so far. */
  statuses(): [string, string, string][] {
    return this.commands()
      .filter((c) => c.name === 'onStatus')
      .map((c) => {
        const info = c.args[1] as { level: string; code: string; description: string };
        return [info.level, info.code, info.description];
      });
  }
}

/** A machine past the handshake, with the server's output decoded from then on. */
function shaken(): { machine: RtmpSessionMachine; server: ServerSide } {
  const machine = new RtmpSessionMachine({ ip: IP, random: fixedRandom, limits: DEFAULT_LIMITS });
  const hello = machine.receive(c0c1());
  assert.equal(hello.length, 1);
  assert.deepEqual(machine.receive(C2), []);
  return { machine, server: new ServerSide() };
}

/** Commands a client sends on the NetStream it created; the others go on message stream 0. */
const NET_STREAM_COMMANDS = new Set(['play', 'publish', 'closeStream']);

/** A client command, chunked at the default size as a client sends it before any Set Chunk Size. */
const cmd = (name: string, txId: number, ...args: Amf0Value[]): Buffer =>
  command(3, NET_STREAM_COMMANDS.has(name) ? 1 : 0, 128, name, txId, ...args);

/** A machine that has answered connect for `app`, with the server's output so far decoded. */
function connected(app = 'live'): { machine: RtmpSessionMachine; server: ServerSide } {
  const s = shaken();
  s.server.take(s.machine.receive(cmd('connect', 1, { app, tcUrl: `rtmp://origin.test:1935/${app}` })));
  return s;
}

function types(actions: RtmpAction[]): string[] {
  return actions.map((a) => a.type);
}

function only<T extends RtmpAction['type']>(
  actions: RtmpAction[],
  type: T,
): Extract<RtmpAction, { type: T }>[] {
  return actions.filter((a): a is Extract<RtmpAction, { type: T }> => a.type === type);
}

const deny = (over: Partial<Denial> = {}): Denial => ({
  allow: false,
  status: 403,
  reason: 'backend_denied',
  ...over,
});

test('rtmp session: C0+C1 gets S0+S1+S2; C2 with connect in the same read is answered at once', () => {
  const machine = new RtmpSessionMachine({ ip: IP, random: fixedRandom, limits: DEFAULT_LIMITS });
  const [reply] = only(machine.receive(c0c1()), 'write');
  assert.equal(reply?.bytes.length, 1 + 2 * HANDSHAKE_PACKET_BYTES);
  const server = new ServerSide();
  server.take(machine.receive(Buffer.concat([C2, cmd('connect', 1, { app: 'live' })])));
  assert.deepEqual(
    server.messages.map((m) => m.type),
    [
      MessageType.WindowAckSize,
      MessageType.SetPeerBandwidth,
      MessageType.SetChunkSize,
      MessageType.CommandAmf0,
    ],
  );
  assert.equal(server.messages[0]?.payload.readUInt32BE(0), 2_500_000);
  assert.equal(server.messages[1]?.payload.readUInt8(4), 2, 'dynamic peer bandwidth limit');
  assert.equal(server.messages[2]?.payload.readUInt32BE(0), OUT_CHUNK_SIZE);
  const [result] = server.commands();
  assert.deepEqual(result, {
    name: '_result',
    txId: 1,
    args: [
      { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
      {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
      },
    ],
    streamId: 0,
    csid: 3,
  });
});

test('rtmp session: a non-RTMP first byte, a second connect and a malformed command throw', () => {
  assert.throws(
    () =>
      new RtmpSessionMachine({ ip: IP, limits: DEFAULT_LIMITS }).receive(Buffer.from('GET / HTTP/1.1\r\n')),
    RtmpProtocolError,
  );
  const { machine } = connected();
  assert.throws(() => machine.receive(cmd('connect', 2, { app: 'live' })), /connect sent twice/);
  const garbage = encodeMessage(
    {
      csid: 3,
      type: MessageType.CommandAmf0,
      streamId: 0,
      timestamp: 0,
      payload: Buffer.from('02ffff', 'hex'),
    },
    128,
  );
  assert.throws(() => connected().machine.receive(garbage), RtmpProtocolError);
});

test('rtmp session: ffmpeg publish capture is answered and asks the manager once; no media before a decision', () => {
  const { machine, server } = shaken();
  const actions: RtmpAction[] = [];
  for (let i = 0; i < PUBLISH_CAPTURE.length; i += 1000) {
    actions.push(...server.take(machine.receive(PUBLISH_CAPTURE.subarray(i, i + 1000))));
  }
  assert.deepEqual(
    server.commands().map((c) => [c.name, c.txId]),
    [
      ['_result', 1], // connect
      ['_result', 2], // releaseStream
      ['_result', 3], // FCPublish
      ['_result', 4], // createStream
      ['_result', 6], // FCUnpublish
    ],
  );
  assert.deepEqual(server.commands()[3]?.args, [null, 1], 'createStream hands out stream 1');
  const asks = only(actions, 'authorize');
  assert.equal(asks.length, 1);
  const request = asks[0]?.request;
  assert.deepEqual(
    { ...request, query: request?.query.toString() },
    {
      kind: 'publish',
      proto: 'rtmp',
      name: 'live/cam1',
      ip: IP,
      qs: 'token=abc',
      query: 'token=abc',
      token: 'abc',
      userAgent: 'FMLE/3.0 (compatible; Lavf59.27.100)',
      host: '127.0.0.1:34729',
    },
  );
  assert.deepEqual(only(actions, 'ready'), [{ type: 'ready' }], 'the handshake deadline ends at publish');
  assert.deepEqual(only(actions, 'idle'), [], 'no idle limit while the manager decides');
  assert.deepEqual(only(actions, 'media'), [], 'media before the decision is dropped');
  assert.deepEqual(only(actions, 'close'), [], 'deleteStream while authorizing is not an end');
  assert.equal(server.statuses().length, 0);
});

/** Feeds the capture byte by byte until the machine asks the manager; returns the offset after that byte. */
function feedUntilAuthorize(machine: RtmpSessionMachine, server: ServerSide, capture: Buffer): number {
  for (let i = 0; i < capture.length; i++) {
    if (server.take(machine.receive(capture.subarray(i, i + 1))).some((a) => a.type === 'authorize')) {
      return i + 1;
    }
  }
  throw new Error('the capture never asked the manager');
}

test('rtmp session: ffmpeg publish capture, allowed and claimed: Publish.Start, then tracks and frames', () => {
  const { machine, server } = shaken();
  const rest = PUBLISH_CAPTURE.subarray(feedUntilAuthorize(machine, server, PUBLISH_CAPTURE));

  assert.deepEqual(machine.decided({ allow: true }), [{ type: 'start', kind: 'publish', name: 'live/cam1' }]);
  const started = server.take(machine.started());
  assert.deepEqual(types(started), ['idle', 'write', 'write']);
  assert.deepEqual(started[0], { type: 'idle', ms: PUBLISH_IDLE_MS });
  const streamBegin = server.messages.at(-2);
  assert.equal(streamBegin?.type, MessageType.UserControl);
  assert.equal(streamBegin?.payload.toString('hex'), '000000000001');
  assert.deepEqual(server.statuses(), [['status', 'NetStream.Publish.Start', 'live/cam1 is now published.']]);

  const actions = server.take(machine.receive(rest));
  const media = only(actions, 'media');
  // The capture holds no media before its publish command, so all of it must come out.
  const payloads = new ChunkReader(READER_LIMITS)
    .push(PUBLISH_CAPTURE)
    .filter((m) => m.type === MessageType.Audio || m.type === MessageType.Video)
    .reduce((n, m) => n + m.payload.length, 0);
  assert.equal(
    media.reduce((n, m) => n + m.payloadBytes, 0),
    payloads,
    'every media payload byte counted',
  );
  const tracks = media.flatMap((m) => (m.tracks ? [m.tracks] : [])).at(-1);
  assert.equal(tracks?.video?.codec, 'h264');
  assert.equal(tracks?.video?.width, 320);
  assert.equal(tracks?.audio?.codec, 'aac');
  const frames = media.flatMap((m) => (m.frame ? [m.frame] : []));
  const video = frames.filter((f) => f.kind === 'video');
  assert.ok(video.length >= 25, `${video.length} video frames`);
  assert.equal(video[0]?.keyframe, true);
  assert.ok(frames.filter((f) => f.kind === 'audio').length >= 80);
  // The capture ends with FCUnpublish (answered) and deleteStream, which ends the connection.
  assert.deepEqual(actions.at(-1), { type: 'close', reason: 'client_closed' });
  assert.equal(server.commands().at(-1)?.txId, 6);
  assert.equal(machine.closed, true);
  assert.deepEqual(machine.receive(PUBLISH_CAPTURE.subarray(0, 100)), [], 'nothing after the end');
});

test('rtmp session: ffmpeg publish capture, denied: Publish.BadName with the reason, then nothing', () => {
  const { machine, server } = shaken();
  const rest = PUBLISH_CAPTURE.subarray(feedUntilAuthorize(machine, server, PUBLISH_CAPTURE));
  const refused = server.take(machine.decided(deny({ detail: 'jwt_expired' })));
  assert.deepEqual(types(refused), ['write', 'refuse']);
  assert.deepEqual(refused[1], {
    type: 'refuse',
    kind: 'publish',
    code: 'NetStream.Publish.BadName',
    description: 'jwt_expired',
  });
  assert.deepEqual(server.statuses(), [['error', 'NetStream.Publish.BadName', 'jwt_expired']]);
  assert.equal(server.messages.at(-1)?.streamId, 1);
  assert.deepEqual(machine.receive(rest), [], 'the media that follows goes nowhere');
  assert.deepEqual(machine.decided({ allow: true }), [], 'a late answer is ignored');
});

test('rtmp session: ffmpeg play capture asks for live/cam1; allowed: Stream Begin, Play.Reset, Play.Start', () => {
  const { machine, server } = shaken();
  const actions = server.take(machine.receive(PLAY_CAPTURE));
  assert.deepEqual(
    server.commands().map((c) => [c.name, c.txId]),
    [
      ['_result', 1],
      ['_result', 2],
    ],
    'connect and createStream answered, getStreamLength is not',
  );
  const [ask] = only(actions, 'authorize');
  assert.deepEqual(
    { ...ask?.request, query: ask?.request.query.toString() },
    {
      kind: 'play',
      proto: 'rtmp',
      name: 'live/cam1',
      ip: IP,
      qs: 'token=abc',
      query: 'token=abc',
      token: 'abc',
      userAgent: 'LNX 9,0,124,2',
      host: '127.0.0.1:33343',
    },
  );
  assert.deepEqual(machine.decided({ allow: true }), [{ type: 'start', kind: 'play', name: 'live/cam1' }]);
  assert.deepEqual(types(server.take(machine.started())), ['write', 'write', 'write']);
  assert.deepEqual(server.statuses(), [
    ['status', 'NetStream.Play.Reset', 'Playing and resetting live/cam1.'],
    ['status', 'NetStream.Play.Start', 'Started playing live/cam1.'],
  ]);
  assert.ok(server.commands().every((c) => c.name !== 'onStatus' || (c.streamId === 1 && c.csid === 3)));
});

/** A protocol control or user control message from the client (chunk stream 2, message stream 0). */
function control(type: number, payloadHex: string): Buffer {
  return encodeMessage(
    { csid: 2, type, streamId: 0, timestamp: 0, payload: Buffer.from(payloadHex.replace(/\s+/g, ''), 'hex') },
    128,
  );
}

function serverMessages(actions: RtmpAction[]): RtmpMessage[] {
  return only(actions, 'write').flatMap((w) => new ChunkReader(READER_LIMITS).push(w.bytes));
}

test('rtmp session: a ping request is answered with its timestamp; the window is acknowledged once per window', () => {
  const machine = new RtmpSessionMachine({ ip: IP, random: fixedRandom, limits: DEFAULT_LIMITS });
  let received = 0;
  const feed = (b: Buffer): RtmpAction[] => {
    received += b.length;
    return machine.receive(b);
  };
  const acks = (actions: RtmpAction[]): number[] =>
    serverMessages(actions)
      .filter((m) => m.type === MessageType.Acknowledgement)
      .map((m) => m.payload.readUInt32BE(0));
  feed(c0c1());
  feed(C2);
  feed(cmd('connect', 1, { app: 'live' }));
  const window = 6000;
  assert.deepEqual(feed(control(MessageType.WindowAckSize, window.toString(16).padStart(8, '0'))), []);
  assert.ok(received < window);

  const ping = control(MessageType.UserControl, '0006 0000002a');
  const [pong] = serverMessages(feed(ping));
  assert.equal(pong?.type, MessageType.UserControl);
  assert.equal(pong?.payload.toString('hex'), '00070000002a');

  const ackedAt: number[] = [];
  while (received < 4 * window) {
    const a = acks(feed(ping));
    if (a.length > 0) assert.deepEqual(a, [received], 'the ack carries the bytes received so far');
    ackedAt.push(...a);
  }
  assert.equal(ackedAt.length, 3);
  let previous = 0;
  for (const at of ackedAt) {
    assert.ok(at - previous >= window && at - previous < window + ping.length, `ack at ${at}`);
    previous = at;
  }
});

const denials: { name: string; kind: 'play' | 'publish'; denial: Denial; status: [string, string] }[] = [
  {
    name: 'a backend no, with its own word',
    kind: 'play',
    denial: deny({ detail: 'rule_denied_ip' }),
    status: ['NetStream.Play.Failed', 'rule_denied_ip'],
  },
  {
    name: 'a rate-limited play',
    kind: 'play',
    denial: deny({ status: 429, reason: 'rate_limited', retryAfterSec: 1 }),
    status: ['NetStream.Play.Failed', 'rate_limited'],
  },
  {
    name: 'a rate-limited publish',
    kind: 'publish',
    denial: deny({ status: 429, reason: 'rate_limited', retryAfterSec: 1 }),
    status: ['NetStream.Publish.BadName', 'rate_limited'],
  },
  {
    name: 'an unknown stream',
    kind: 'play',
    denial: deny({ status: 404, reason: 'stream_not_found' }),
    status: ['NetStream.Play.StreamNotFound', 'stream_not_found'],
  },
  {
    name: 'a redirect',
    kind: 'play',
    denial: deny({ status: 302, reason: 'redirect', location: 'rtmp://other.test/live/cam1' }),
    status: ['NetStream.Play.Failed', 'redirect: rtmp://other.test/live/cam1'],
  },
  {
    name: 'a wrong publish password',
    kind: 'publish',
    denial: deny({ reason: 'wrong_password' }),
    status: ['NetStream.Publish.BadName', 'wrong_password'],
  },
  {
    name: 'an unknown stream to publish',
    kind: 'publish',
    denial: deny({ status: 404, reason: 'stream_not_found' }),
    status: ['NetStream.Publish.BadName', 'stream_not_found'],
  },
];

for (const c of denials) {
  test(`rtmp session: ${c.name} is refused with ${c.status[0]}`, () => {
    const { machine, server } = connected();
    assert.deepEqual(types(machine.receive(cmd(c.kind, 2, null, 'cam1'))), ['ready', 'authorize']);
    const actions = server.take(machine.decided(c.denial));
    assert.deepEqual(actions.at(-1), {
      type: 'refuse',
      kind: c.kind,
      code: c.status[0],
      description: c.status[1],
    });
    assert.deepEqual(server.statuses(), [['error', ...c.status]]);
    assert.equal(machine.closed, true);
  });
}

test('rtmp session: a granted request whose stream cannot start is refused', () => {
  const busy = connected();
  busy.machine.receive(cmd('publish', 2, null, 'cam1', 'live'));
  busy.machine.decided({ allow: true });
  busy.server.take(busy.machine.startFailed('stream_busy'));
  assert.deepEqual(busy.server.statuses(), [
    ['error', 'NetStream.Publish.BadName', 'stream is already being published'],
  ]);
  const gone = connected();
  gone.machine.receive(cmd('play', 2, null, 'cam1'));
  gone.machine.decided({ allow: true });
  gone.server.take(gone.machine.startFailed('stream_not_found'));
  assert.deepEqual(gone.server.statuses(), [['error', 'NetStream.Play.StreamNotFound', 'stream not found']]);
  assert.throws(() => gone.machine.started(), 'started() after a refusal is a bug');
});

test('rtmp session: a manager failure refuses with "internal error"', () => {
  const { machine, server } = connected();
  machine.receive(cmd('play', 2, null, 'cam1'));
  server.take(machine.decisionFailed());
  assert.deepEqual(server.statuses(), [['error', 'NetStream.Play.Failed', 'internal error']]);
});

test('rtmp session: an invalid stream name is refused without asking the manager', () => {
  const play = connected();
  const actions = play.server.take(play.machine.receive(cmd('play', 2, null, 'a b')));
  assert.deepEqual(types(actions), ['ready', 'write', 'refuse']);
  assert.deepEqual(play.server.statuses(), [
    ['error', 'NetStream.Play.StreamNotFound', "invalid stream name 'live/a b'"],
  ]);
  const publish = connected('api');
  publish.server.take(publish.machine.receive(cmd('publish', 2, null, 'x')));
  assert.deepEqual(publish.server.statuses(), [
    ['error', 'NetStream.Publish.BadName', "invalid stream name 'api/x'"],
  ]);
  // A hostile name is quoted back shortened, not 200,000 characters into the log and the reply.
  const long = connected();
  long.server.take(long.machine.receive(cmd('publish', 2, null, 'x'.repeat(200_000))));
  const [, , description] = long.server.statuses()[0] ?? [];
  assert.equal(description, `invalid stream name 'live/${'x'.repeat(59)}… (200005 characters)'`);
});

test('rtmp session: one play or publish per connection', () => {
  const { machine, server } = connected();
  machine.receive(cmd('play', 2, null, 'cam1'));
  const second = server.take(machine.receive(cmd('publish', 3, null, 'cam2')));
  assert.deepEqual(types(second), ['write', 'refuse']);
  assert.deepEqual(server.statuses(), [
    ['error', 'NetStream.Publish.BadName', 'already playing or publishing on this connection'],
  ]);
  assert.deepEqual(machine.decided({ allow: true }), [], 'the first answer no longer matters');
});

test('rtmp session: deleteStream ends a running play; closeStream ends a running publish', () => {
  for (const [kind, end] of [
    ['play', 'deleteStream'],
    ['publish', 'closeStream'],
  ] as const) {
    const { machine } = connected();
    machine.receive(cmd(kind, 2, null, 'cam1'));
    machine.decided({ allow: true });
    machine.started();
    assert.deepEqual(machine.receive(cmd(end, 3, null, 1)), [{ type: 'close', reason: 'client_closed' }]);
    assert.equal(machine.closed, true);
  }
});

test('rtmp session: a player sending media has it ignored; FCPublish and releaseStream are answered', () => {
  const { machine, server } = connected();
  const answers = server.take(
    machine.receive(
      Buffer.concat([cmd('releaseStream', 2, null, 'cam1'), cmd('FCPublish', 3, null, 'cam1')]),
    ),
  );
  assert.deepEqual(types(answers), ['write', 'write']);
  assert.deepEqual(
    server
      .commands()
      .slice(1)
      .map((c) => [c.name, c.txId, c.args]),
    [
      ['_result', 2, [null, undefined]],
      ['_result', 3, [null, undefined]],
    ],
  );
  machine.receive(cmd('play', 4, null, 'cam1'));
  machine.decided({ allow: true });
  machine.started();
  const video = encodeMessage(
    {
      csid: 6,
      type: MessageType.Video,
      streamId: 1,
      timestamp: 0,
      payload: Buffer.from('1700000000', 'hex'),
    },
    128,
  );
  assert.deepEqual(machine.receive(video), []);
});
