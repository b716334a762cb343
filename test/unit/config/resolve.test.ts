// Template inheritance, global defaults and name lookup over a parsed config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatConfigError, parseConfig } from '../../../src/config/parse.js';
import { effectiveStreamConfig, matchesPrefix, resolveStreamConfig } from '../../../src/config/resolve.js';
import type { Config } from '../../../src/config/types.js';

function ok(text: string): Config {
  const r = parseConfig(text, 'r.conf');
  if ('errors' in r) assert.fail(r.errors.map(formatConfigError).join('\n'));
  return r.config;
}

const CONF = `
on_play http://global/play;
on_publish http://global/publish;
auth_backend b { allow default; }
template t {
  prefix live;
  input publish://;
  password tp;
  on_play http://tpl/play max_sessions=2;
  segment_duration 4;
  protocols { hls false; }
  playback_headers { header X-A 1; }
}
template bare { prefix any/where; input publish://; }
stream inherits { template t; }
stream overrides {
  template t;
  input fake://fake;
  password own;
  on_play true;
  segment_duration 1;
}
stream legacy { template t; auth auth://b; }
stream alone { input fake://fake; }
stream legacy_alone { input fake://fake; auth auth://b; }
`;

test('a stream inherits what it does not set from its template', () => {
  const c = ok(CONF);
  const s = c.streams.find((x) => x.name === 'inherits');
  assert.ok(s);
  const e = effectiveStreamConfig(s, c);
  assert.equal(e.name, 'inherits');
  assert.equal(e.kind, 'stream');
  assert.deepEqual(e.inputs, ['publish://']);
  assert.equal(e.password, 'tp');
  assert.equal(e.onPlay?.url, 'http://tpl/play');
  assert.equal(e.onPlay?.maxSessions, 2);
  assert.equal(e.onPublish?.url, 'http://global/publish');
  assert.equal(e.segmentDuration, 4);
  assert.deepEqual(e.protocols, { whitelist: false, flags: { hls: false } });
  assert.deepEqual(e.playbackHeaders?.headers, [['X-A', '1']]);
  assert.deepEqual(e.prefixes, []);
  // The parsed stream itself is not modified.
  assert.deepEqual(s.inputs, []);
});

test('stream values win over the template', () => {
  const c = ok(CONF);
  const e = resolveStreamConfig('overrides', c);
  assert.ok(e);
  assert.deepEqual(e.inputs, ['fake://fake']);
  assert.equal(e.password, 'own');
  assert.equal(e.onPlay?.url, 'true');
  assert.equal(e.segmentDuration, 1);
});

test("a stream's legacy auth loses to the template's on_play (AUTH-SPEC §6.5)", () => {
  const c = ok(CONF);
  assert.equal(resolveStreamConfig('legacy', c)?.onPlay?.url, 'http://tpl/play');
  // Without a template on_play, the legacy auth stands.
  assert.equal(resolveStreamConfig('legacy_alone', c)?.onPlay?.url, 'auth://b');
});

test('global on_play / on_publish are the default for streams that set none', () => {
  const c = ok(CONF);
  const e = resolveStreamConfig('alone', c);
  assert.equal(e?.onPlay?.url, 'http://global/play');
  assert.equal(e?.onPublish?.url, 'http://global/publish');
  assert.equal(e?.password, undefined);
  assert.ok(e && !('password' in e), 'no undefined-valued keys');
});

test('template prefixes resolve dynamic names', () => {
  const c = ok(CONF);
  const e = resolveStreamConfig('live/cam1', c);
  assert.ok(e);
  assert.equal(e.name, 'live/cam1');
  assert.equal(e.kind, 'stream');
  assert.equal(e.template, 't');
  assert.deepEqual(e.inputs, ['publish://']);
  assert.equal(e.password, 'tp');
  assert.equal(resolveStreamConfig('any/where/deep/x', c)?.template, 'bare');
  assert.equal(resolveStreamConfig('any/where', c), undefined);
  assert.equal(resolveStreamConfig('live', c), undefined);
  assert.equal(resolveStreamConfig('livex/cam', c), undefined);
  assert.equal(resolveStreamConfig('nothing', c), undefined);
});

test('static streams win over template prefixes; first template in file order wins', () => {
  const c = ok(
    'template a { prefix ""; input publish://; }\ntemplate b { prefix x; input publish://; }\nstream x/y { input fake://fake; }',
  );
  assert.equal(resolveStreamConfig('x/y', c)?.template, undefined);
  assert.deepEqual(resolveStreamConfig('x/y', c)?.inputs, ['fake://fake']);
  assert.equal(resolveStreamConfig('x/z', c)?.template, 'a');
});

test('matchesPrefix', () => {
  assert.equal(matchesPrefix('live/a', 'live'), true);
  assert.equal(matchesPrefix('live/a/b', 'live'), true);
  assert.equal(matchesPrefix('live', 'live'), false);
  assert.equal(matchesPrefix('lively/a', 'live'), false);
  assert.equal(matchesPrefix('whatever', ''), true);
});
