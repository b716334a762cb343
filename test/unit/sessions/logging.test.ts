/** Raw tokens, bearers and passwords never reach the logs (SPEC §7). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenHash } from '../../../src/core/secrets.js';
import { allow, denyD, granted, harness, request, spec, unavailable } from './helpers.js';

const TOKEN = 'Sup3rSecretToken-4242';

test('logs carry token_hash for open, close, denial and ban lines, never the token, bearer or password', async () => {
  const h = harness({
    policy: {
      onPlay: spec('http://b/auth?secret=xyz-extra', {
        bearer: 'BearerSecret99',
        extra: { k: 'ExtraSecret77' },
      }),
      onPublish: spec('http://b/pub'),
      password: 'PublishPass55',
    },
  });
  h.backend.answer = () => allow({ userId: 'u1', unique: true });
  const a = granted(await h.manager.open(request({ proto: 'rtmp', token: TOKEN })));
  granted(await h.manager.open(request({ proto: 'hls', token: TOKEN })));
  assert.equal(a.closed, true, 'banned by unique');
  h.backend.answer = () => denyD();
  await h.manager.open(request({ token: TOKEN, name: 'live/cam2' }));
  await h.manager.open(request({ token: TOKEN, name: 'live/cam2' }));
  h.backend.answer = () => unavailable();
  await h.manager.open(request({ token: TOKEN, name: 'live/cam3' }));
  await h.manager.open(
    request({
      kind: 'publish',
      proto: 'rtmp',
      token: TOKEN,
      qs: 'password=wrong',
      query: new URLSearchParams('password=wrong'),
    }),
  );
  h.manager.closeAll('server_shutdown');
  const text = h.lines.join('\n');
  for (const secret of [TOKEN, 'BearerSecret99', 'ExtraSecret77', 'xyz-extra', 'PublishPass55']) {
    assert.ok(!text.includes(secret), `log leaks ${secret}`);
  }
  const events = h.lines.map((l) => JSON.parse(l) as { event?: string; token_hash?: string });
  for (const ev of ['session_open', 'session_close', 'session_denied', 'session_ban']) {
    const e = events.find((x) => x.event === ev);
    assert.ok(e, ev);
    assert.equal(e.token_hash, tokenHash(TOKEN), ev);
  }
  h.manager.close();
});
