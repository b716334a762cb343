/**
 * The RTMP session machine's issue-10 parts, on the pure machine: Adobe `authmod` (the challenge
 * in answer to connect and the proof admission checks), the Enhanced RTMP capabilities answered
 * in connect, the play refusal for a codec a client did not list, and one-time notices (dropped
 * codecs, long keyframe intervals).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Amf0Value } from '../../../../src/media/amf0.js';
import { ChunkReader, type RtmpMessage } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { HANDSHAKE_PACKET_BYTES } from '../../../../protocols/rtmp/wire/handshake.js';
import { MessageType, command, decodeCommand } from '../../../../protocols/rtmp/wire/messages.js';
import {
  RtmpSessionMachine,
  chunkReaderLimits,
  type RtmpAction,
} from '../../../../protocols/rtmp/session.js';
import {
  AdobeAuth,
  ADOBE_CHALLENGE_TTL_MS,
  adobeApps,
  adobeResponse,
  connectParams,
  rtmpTarget,
} from '../../../../protocols/rtmp/credentials.js';
import { FlvReader } from '../../../../src/media/flv.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import type { Tracks } from '../../../../src/media/types.js';

const FMLE = 'FMLE/3.0 (compatible; FMSc/1.0)';

class Server {
  private readonly reader = new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
  readonly messages: RtmpMessage[] = [];
  take(actions: RtmpAction[]): RtmpAction[] {
    for (const a of actions) if (a.type === 'write') this.messages.push(...this.reader.push(a.bytes));
    return actions;
  }
  commands(): { name: string; txId: number; args: Amf0Value[] }[] {
    return this.messages.filter((m) => m.type === MessageType.CommandAmf0).map((m) => decodeCommand(m));
  }
}

const cmd = (name: string, txId: number, ...args: Amf0Value[]): Buffer =>
  command(3, name === 'play' || name === 'publish' ? 1 : 0, 128, name, txId, ...args);

function machine(options: { adobe?: AdobeAuth; required?: boolean } = {}): {
  m: RtmpSessionMachine;
  server: Server;
} {
  const m = new RtmpSessionMachine({
    ip: '192.0.2.9',
    limits: DEFAULT_LIMITS,
    random: (n) => Buffer.alloc(n, 1),
    ...(options.adobe ? { adobeAuth: options.adobe } : {}),
    adobeRequired: (app) => options.required === true && app === 'obs',
  });
  m.receive(Buffer.concat([Buffer.of(3), Buffer.alloc(HANDSHAKE_PACKET_BYTES, 2)]));
  m.receive(Buffer.alloc(HANDSHAKE_PACKET_BYTES, 3));
  return { m, server: new Server() };
}

function connectWith(app: string, extra: Record<string, Amf0Value> = {}, flashVer = FMLE) {
  const s = machine({ adobe: fixedAdobe(), required: true });
  const actions = s.server.take(
    s.m.receive(cmd('connect', 1, { app, flashVer, tcUrl: `rtmp://h/${app}`, ...extra })),
  );
  return { ...s, actions, answer: s.server.commands()[0] };
}

let clock = 1_000_000;
const fixedAdobe = (() => {
  const shared = new AdobeAuth(
    Buffer.alloc(32, 9),
    () => clock,
    (n) => Buffer.alloc(n, 5),
  );
  return () => shared;
})();

function description(answer: { args: Amf0Value[] } | undefined): string {
  return (answer?.args[1] as { description: string }).description;
}

/** The client's half of the exchange, as ffmpeg and librtmp compute it. */
function respond(desc: string, user: string, password: string, clientChallenge: string): string {
  const q = new Map(
    desc
      .slice(desc.indexOf('?reason=') + 1)
      .split('&')
      .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]),
  );
  const opaque = q.get('opaque') ?? '';
  const response = adobeResponse(user, q.get('salt') ?? '', password, opaque, clientChallenge);
  return `authmod=adobe&user=${user}&challenge=${clientChallenge}&response=${response}&opaque=${opaque}`;
}

test('authmod=adobe: a publisher-looking connect to an adobe app is told "need auth"; players and other apps are not', () => {
  const step1 = connectWith('obs');
  assert.equal(step1.answer?.name, '_error');
  assert.equal((step1.answer?.args[1] as { code: string }).code, 'NetConnection.Connect.Rejected');
  assert.equal(
    description(step1.answer),
    '[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ',
  );
  assert.ok(step1.m.closed);
  assert.equal(step1.actions.at(-1)?.type, 'refuse');
  assert.equal(connectWith('obs', {}, 'LNX 9,0,124,2').answer?.name, '_result', 'a player is not challenged');
  assert.equal(connectWith('live').answer?.name, '_result', 'an app without rtmp_auth is not challenged');
});

test('authmod=adobe: salt/challenge, then a right response publishes and a wrong one is refused at publish', () => {
  const step2 = connectWith('obs?authmod=adobe&user=alice');
  const desc = description(step2.answer);
  assert.match(
    desc,
    /^\[ AccessManager\.Reject \] : \[ authmod=adobe \] : \?reason=needauth&user=alice&salt=[\w-]+&challenge=([\w.-]+)&opaque=\1$/,
  );

  // librtmp's client challenge is base64 with '+', '/' and '=' sent unencoded.
  const good = connectWith(`obs?${respond(desc, 'alice', 's3cret', 'Zm+/YQ==')}`);
  assert.equal(good.answer?.name, '_result');
  good.server.take(good.m.receive(cmd('createStream', 2, null)));
  const ask = good.m.receive(cmd('publish', 3, null, 'cam2', 'live')).find((a) => a.type === 'authorize');
  assert.ok(ask?.type === 'authorize');
  assert.equal(ask.request.name, 'obs/cam2');
  assert.equal(ask.request.query.toString(), 'user=alice', 'only user reaches the backend');
  assert.equal(ask.request.passwordProof?.('wrong'), false);
  assert.equal(ask.request.passwordProof?.('s3cret'), false, 'one check per proof');

  const again = connectWith(`obs?${respond(desc, 'alice', 's3cret', 'AAAA')}`);
  again.m.receive(cmd('createStream', 2, null));
  const ask2 = again.m.receive(cmd('publish', 3, null, 'cam2', 'live')).find((a) => a.type === 'authorize');
  assert.ok(ask2?.type === 'authorize');
  assert.equal(ask2.request.passwordProof?.('s3cret'), true, 'the right password');

  const replay = connectWith(`obs?${respond(desc, 'alice', 's3cret', 'AAAA')}`);
  replay.m.receive(cmd('createStream', 2, null));
  const ask3 = replay.m.receive(cmd('publish', 3, null, 'cam2', 'live')).find((a) => a.type === 'authorize');
  assert.ok(ask3?.type === 'authorize');
  assert.equal(ask3.request.passwordProof?.('s3cret'), false, 'a used challenge does not work twice');
});

test('authmod=adobe: a forged, other-user or expired challenge is "authfailed"; ffmpeg\'s doubled ? is read', () => {
  const desc = description(connectWith('obs?authmod=adobe&user=alice').answer);
  const forged = respond(desc, 'alice', 'x', 'c').replace(/opaque=[^&]*$/, 'opaque=AAAA.zz.BBBB');
  assert.match(description(connectWith(`obs?${forged}`).answer), /\?reason=authfailed$/);
  const otherUser = respond(desc, 'mallory', 'x', 'c');
  assert.match(description(connectWith(`obs?${otherUser}`).answer), /\?reason=authfailed$/);
  clock += ADOBE_CHALLENGE_TTL_MS + 1;
  assert.match(description(connectWith(`obs?${respond(desc, 'alice', 'x', 'c')}`).answer), /authfailed/);
  // ffmpeg -rtmp_app 'obs?authmod=adobe' appends its own '?authmod=adobe&user=…'.
  const params = connectParams({ app: 'obs?authmod=adobe?authmod=adobe&user=bob&response=a+b==' });
  assert.equal(params.get('user'), 'bob');
  assert.equal(params.get('response'), 'a+b==');
});

test('rtmp_auth adobe: the apps of templates and streams that set it', () => {
  const apps = adobeApps([
    { name: 'obs', prefixes: ['obs', 'studio'], rtmpAuth: 'adobe' },
    { name: 'live', prefixes: ['live'] },
    { name: 'cams/door', prefixes: [], rtmpAuth: 'adobe' },
  ]);
  assert.deepEqual([...apps].sort(), ['cams', 'obs', 'studio']);
});

test('OBS multitrack mode moves the key query onto the server URL: token and query are found either way', () => {
  const onUrl = rtmpTarget({ app: 'live?token=T&x=1' }, 'cam1');
  assert.deepEqual([onUrl.name, onUrl.token, onUrl.query.toString()], ['live/cam1', 'T', 'token=T&x=1']);
  const merged = rtmpTarget({ app: 'live?x=1&token=old' }, 'cam1?token=T');
  assert.deepEqual([merged.token, merged.query.toString()], ['T', 'x=1&token=T']);
});

test('e-rtmp connect: a client that declares fourCcList/capsEx gets ours back; a legacy client gets the legacy answer', () => {
  const e = connectWith('live', { fourCcList: ['hvc1', 'av01'], capsEx: 1 });
  const props = e.answer?.args[0] as Record<string, Amf0Value>;
  assert.deepEqual(props['fourCcList'], ['avc1', 'hvc1', 'av01', 'vp09', 'mp4a', 'Opus']);
  assert.deepEqual(props['videoFourCcInfoMap'], { avc1: 4, hvc1: 4, av01: 4, vp09: 4 });
  assert.equal(props['capsEx'], 6);
  const legacy = connectWith('live').answer?.args[0] as Record<string, Amf0Value>;
  assert.deepEqual(Object.keys(legacy), ['fmsVer', 'capabilities']);
});

const AV1_TRACKS: Tracks = { video: { kind: 'video', codec: 'av1', config: Buffer.from([0x81, 0, 0, 0]) } };

function playing(extra: Record<string, Amf0Value>, seen?: { server?: Server }): RtmpSessionMachine {
  const { m, server } = connectWith('live', extra, 'LNX 9,0,124,2');
  if (seen) seen.server = server;
  m.receive(cmd('createStream', 2, null));
  m.receive(cmd('play', 3, null, 'cam1'));
  m.decided({ allow: true });
  return m;
}

test('e-rtmp play: a client whose fourCcList lacks the codec is refused with Play.Failed; one that lists it or lists nothing plays', () => {
  const seen: { server?: Server } = {};
  const refused = playing({ fourCcList: ['hvc1'] }, seen).codecRefusal(AV1_TRACKS);
  seen.server?.take(refused ?? []);
  const info = seen.server?.commands().at(-1)?.args[1] as { code: string; description: string };
  assert.equal(info.code, 'NetStream.Play.Failed');
  assert.match(info.description, /av01.*fourCcList/);
  assert.equal(playing({ fourCcList: ['av01'] }).codecRefusal(AV1_TRACKS), undefined);
  assert.equal(playing({ videoFourCcInfoMap: { '*': 4 } }).codecRefusal(AV1_TRACKS), undefined);
  assert.equal(
    playing({}).codecRefusal(AV1_TRACKS),
    undefined,
    'ffmpeg 6.1 declares nothing and plays E-RTMP',
  );
  const h264: Tracks = {
    video: { kind: 'video', codec: 'h264', config: Buffer.from([1, 0x42, 0, 0x1e, 0xff, 0xe0, 0]) },
  };
  assert.equal(playing({ fourCcList: ['hvc1'] }).codecRefusal(h264), undefined, 'legacy tags need no FourCC');
});

test('publish notices: an unsupported codec once, and a keyframe interval over twice the segment duration once', () => {
  const { m } = connectWith('live');
  m.receive(cmd('createStream', 2, null));
  m.receive(cmd('publish', 3, null, 'cam1', 'live'));
  m.decided({ allow: true });
  m.started({ segmentSeconds: 2 });
  const tags = new FlvReader().push(
    readFileSync(new URL('../../../fixtures/rtmp/ertmp-hevc-aac.flv', import.meta.url)),
  );
  const send = (type: number, ts: number, body: Buffer): RtmpAction[] =>
    m.receive(
      encodeMessage({ csid: type === 8 ? 4 : 6, type, streamId: 1, timestamp: ts, payload: body }, 128),
    );
  const notices: string[] = [];
  const collect = (actions: RtmpAction[]): void => {
    for (const a of actions) if (a.type === 'notice') notices.push(a.message);
  };
  for (const t of tags) collect(send(t.type, t.timestamp, t.data));
  const key = tags.find((t) => t.type === 9 && t.data[0] === 0x93);
  assert.ok(key, 'a CodedFramesX keyframe in the fixture');
  collect(send(9, 5000, key.data));
  collect(send(9, 10_000, key.data));
  collect(send(8, 10_000, Buffer.of(0x2f, 1, 2))); // MP3
  collect(send(8, 10_020, Buffer.of(0x2f, 1, 2)));
  assert.equal(notices.length, 2, notices.join('\n'));
  assert.match(
    notices[0] ?? '',
    /^keyframe interval 5\.0 s is much longer than the 2 s HLS segment.*OBS.*Keyframe Interval/,
  );
  assert.equal(notices[1], 'audio sound format 2 is not supported; its frames are dropped');
});
