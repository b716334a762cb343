// Backend config overrides (AUTH-SPEC §8.1): the pure merge, judged by the config file's own rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/parse.js';
import type { FileRoots, StreamConfig } from '../../../src/config/types.js';
import { mergeOverride, withOverride, type StreamOverride } from '../../../src/streams/override.js';
import { StreamRegistry } from '../../../src/streams/registry.js';

const base: StreamConfig = {
  kind: 'stream',
  name: 'movie',
  prefixes: [],
  // As the parser leaves it: resolved against the config's directory, /srv/media.
  inputs: ['file:///srv/media/vod/bunny.mp4'],
  loc: { file: 't', line: 1, col: 1 },
};

const FILES: FileRoots = { roots: ['/srv/media', '/mnt/vod'], base: '/srv/media' };

function refused(partial: unknown, current?: StreamOverride): string {
  const r = mergeOverride(base, current, partial, FILES);
  if (r.ok) assert.fail(`expected ${JSON.stringify(partial)} to be refused`);
  return r.error;
}

function accepted(partial: unknown, current?: StreamOverride) {
  const r = mergeOverride(base, current, partial, FILES);
  if (!r.ok) assert.fail(`expected ${JSON.stringify(partial)} to be accepted, got: ${r.error}`);
  return r;
}

function fileRefuses(line: string): boolean {
  return 'errors' in parseConfig(`stream s { input fake://fake; ${line} }`, 't.conf');
}

test('override: a segment_duration the config file refuses is refused, with the same words', () => {
  assert.ok(fileRefuses('segment_duration 0;') && fileRefuses('segment_duration -1;'));
  assert.equal(refused({ segment_duration: 0 }), "segment_duration must be a positive number, got '0'");
  assert.equal(refused({ segment_duration: -1 }), "segment_duration must be a positive number, got '-1'");
  assert.match(refused({ segment_duration: '2' }), /segment_duration must be a positive number, got '"2"'/);
  assert.match(refused({ segment_duration: true }), /segment_duration must be a positive number/);
  assert.equal(accepted({ segment_duration: 0.5 }).effective.segmentDuration, 0.5);
  // The file sets no upper bound, so neither does an override.
  assert.ok(!fileRefuses('segment_duration 1000000000;'));
  assert.equal(accepted({ segment_duration: 1e9 }).effective.segmentDuration, 1e9);
});

test('override: inputs obey the config file rules (scheme list, nothing after ://)', () => {
  assert.ok(fileRefuses('input ftp://x;'));
  assert.equal(refused({ inputs: ['ftp://x'] }), "unknown input scheme 'ftp://'");
  assert.equal(
    refused({ inputs: [{ url: 'rtmpp://h/a' }] }),
    "unknown input scheme 'rtmpp://'; did you mean 'rtmp://'?",
  );
  assert.equal(refused({ inputs: ['fake://'] }), "input 'fake://' has nothing after '://'");
  assert.match(refused({ inputs: ['bunny.mp4'] }), /bad input URL 'bunny.mp4'/);
  assert.match(refused({ inputs: [] }), /non-empty array/);
  assert.match(refused({ inputs: 'fake://fake' }), /non-empty array/);
  assert.match(refused({ inputs: [{ uri: 'fake://fake' }] }), /inputs\[0\] must be a URL/);
  assert.match(refused({ inputs: ['fake://fake', 7] }), /inputs\[1\] must be a URL/);
  const r = accepted({ inputs: ['publish://', { url: 'fake://fake' }] });
  assert.deepEqual(r.effective.inputs, ['publish://', 'fake://fake']);
});

test('override: password must be a non-empty string', () => {
  assert.equal(refused({ password: '' }), 'password must not be empty');
  assert.equal(refused({ password: 42 }), 'password must be a string');
  assert.equal(accepted({ password: 's3cret' }).effective.password, 's3cret');
});

test('override: protocols take the switch names of a protocols block and booleans only', () => {
  assert.equal(refused({ protocols: { hsl: false } }), "unknown protocol 'hsl' in protocols");
  assert.equal(refused({ protocols: { hls: 'false' } }), 'protocols.hls must be true or false, got "false"');
  assert.match(refused({ protocols: [] }), /protocols must be an object/);
  const r = accepted({ protocols: { whitelist: true, rtmp: true, dash: false } });
  assert.deepEqual(r.effective.protocols, { whitelist: true, flags: { rtmp: true, dash: false } });
});

test('override: unknown keys, and anything but an object, are refused', () => {
  assert.equal(refused({ transcoder: { vb: 1 } }), "override key 'transcoder' is not supported");
  assert.equal(refused({ inputs: ['fake://fake'], pushes: [] }), "override key 'pushes' is not supported");
  assert.equal(
    refused(JSON.parse('{"__proto__": {"inputs": []}}')),
    "override key '__proto__' is not supported",
  );
  assert.match(refused(null), /must be a JSON object/);
  assert.match(refused(['inputs']), /must be a JSON object/);
});

test('override: a file:// input outside the file roots is refused, as in the config file', () => {
  for (const url of [
    'file:///etc/passwd',
    'file://../secrets/x.mp4',
    'file://vod/../../etc/shadow',
    'file:///srv/media-other/x.mp4',
    'file:///mnt/vod/../../etc/passwd',
  ]) {
    assert.match(refused({ inputs: [url] }), /outside the file roots \(\/srv\/media, \/mnt\/vod\)/, url);
  }
  assert.match(refused({ inputs: ['file://vod/a\u0000.mp4'] }), /control character/);
  assert.match(refused({ inputs: ['fake://fake', { url: 'file:///etc/passwd' }] }), /outside the file roots/);
  const inside = accepted({ inputs: ['file://vod/other.mp4', 'file:///mnt/vod/a/../b.mp4'] });
  assert.deepEqual(
    inside.effective.inputs,
    ['file:///srv/media/vod/other.mp4', 'file:///mnt/vod/b.mp4'],
    'relative paths resolve against the config directory; the checked path is the one used',
  );
  assert.deepEqual(accepted({ inputs: ['file://concat:x|y'] }).effective.inputs, [
    'file:///srv/media/concat:x|y',
  ]);
});

test('override: null deletes a key and the configured value comes back', () => {
  const withPassword = { ...base, password: 'file' };
  const set = mergeOverride(withPassword, undefined, { password: 'backend', segment_duration: 4 }, FILES);
  assert.ok(set.ok);
  assert.equal(set.effective.password, 'backend');
  const cleared = mergeOverride(withPassword, set.override, { password: null }, FILES);
  assert.ok(cleared.ok && cleared.changed);
  assert.deepEqual(cleared.override, { segmentDuration: 4 });
  assert.equal(cleared.effective.password, 'file');
  const empty = mergeOverride(withPassword, cleared.override, { segment_duration: null }, FILES);
  assert.ok(empty.ok);
  assert.equal(empty.override, undefined, 'nothing left to override');
  assert.deepEqual(empty.effective, withPassword);
});

test('override: switching protocols off lists the play protocols to close', () => {
  const r = accepted({ protocols: { hls: false, tshttp: false, dash: false } });
  assert.deepEqual(r.closedProtocols, ['hls', 'tshttp']);
  const only = accepted({ protocols: { whitelist: true, rtmp: true } }, r.override);
  assert.deepEqual(
    only.closedProtocols,
    ['rtsp', 'mp4'],
    'hls and tshttp were already closed; a whitelist without mp4 ends archive downloads too',
  );
  const reopen = accepted({ protocols: null }, only.override);
  assert.ok(reopen.changed);
  assert.deepEqual(reopen.closedProtocols, []);
});

test('override: the same override again changes nothing', () => {
  const first = accepted({ inputs: [{ url: 'fake://fake' }], protocols: { hls: false } });
  assert.ok(first.changed);
  const again = accepted({ inputs: ['fake://fake'], protocols: { hls: false } }, first.override);
  assert.equal(again.changed, false);
  assert.equal(again.restartInput, false);
  assert.deepEqual(again.closedProtocols, []);
  assert.equal(again.override, first.override);
  const same = accepted({ inputs: ['file://vod/bunny.mp4'] });
  assert.equal(same.changed, false, 'setting the configured value is no change');
  assert.equal(same.override, undefined);
  assert.equal(accepted({}).changed, false);
});

test('override: only a change of inputs restarts the input', () => {
  const inputs = accepted({ inputs: ['fake://fake'] });
  assert.equal(inputs.restartInput, true);
  const other = accepted({ segment_duration: 4, protocols: { hls: false } }, inputs.override);
  assert.equal(other.changed, true);
  assert.equal(other.restartInput, false);
  const back = accepted({ inputs: null }, other.override);
  assert.equal(back.restartInput, true);
  assert.deepEqual(back.effective.inputs, base.inputs);
});

test('override: a refused override leaves the current one as it was', () => {
  const current: StreamOverride = { password: 'x' };
  refused({ password: null, segment_duration: 0 }, current);
  assert.deepEqual(current, { password: 'x' });
  assert.equal(withOverride(base, current).password, 'x');
});

test('override: a running stream judges file:// inputs by the roots of the config loaded now', async () => {
  const load = (text: string) => {
    const r = parseConfig(text, '/etc/sg/streamgate.conf');
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    return r.config;
  };
  const registry = new StreamRegistry(load('template live { prefix live; input publish://; }'), {
    log: pino({ level: 'silent' }),
    ffmpeg: 'ffmpeg',
  });
  try {
    const stream = registry.resolve('live/cam1');
    assert.ok(stream);
    const outside = stream.applyOverride({ inputs: ['file:///srv/vod/a.mp4'] });
    assert.ok(!outside.ok && /outside the file roots \(\/etc\/sg\)/.test(outside.error));
    await registry.reload(load('file_root /mnt;\ntemplate live { prefix live; input publish://; }'));
    const stillOutside = stream.applyOverride({ inputs: ['file:///srv/vod/a.mp4'] });
    assert.ok(!stillOutside.ok && /outside the file roots \(\/mnt\)/.test(stillOutside.error));
    assert.deepEqual(stream.config.inputs, ['publish://'], 'nothing was applied');
  } finally {
    await registry.stop();
  }
});
