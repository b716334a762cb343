import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectInfo, rtmpTarget } from '../../../../protocols/rtmp/credentials.js';

const cases: {
  name: string;
  app: string;
  tcUrl?: string;
  arg: string;
  stream: string;
  token?: string;
  qs: string;
}[] = [
  {
    name: 'OBS: server rtmp://h/live, key cam1?token=T',
    app: 'live',
    arg: 'cam1?token=T',
    stream: 'live/cam1',
    token: 'T',
    qs: 'token=T',
  },
  {
    name: 'ffmpeg play of rtmp://h/live/cam1?token=T',
    app: 'live',
    tcUrl: 'rtmp://h:1935/live',
    arg: 'cam1?token=T',
    stream: 'live/cam1',
    token: 'T',
    qs: 'token=T',
  },
  {
    name: 'static app is discarded',
    app: 'static',
    arg: 'demo?token=T',
    stream: 'demo',
    token: 'T',
    qs: 'token=T',
  },
  { name: 'legacy rtmp app is discarded', app: 'rtmp', arg: 'demo', stream: 'demo', qs: '' },
  {
    name: 'token on the connect URL',
    app: 'live?token=C',
    tcUrl: 'rtmp://h/live?token=C',
    arg: 'cam1',
    stream: 'live/cam1',
    token: 'C',
    qs: 'token=C',
  },
  {
    name: 'stream-name query wins over connect query',
    app: 'live?token=C',
    arg: 'cam1?token=N',
    stream: 'live/cam1',
    token: 'N',
    qs: 'token=N',
  },
  {
    name: 'token only on tcUrl',
    app: 'live',
    tcUrl: 'rtmp://h/live?token=U',
    arg: 'cam1',
    stream: 'live/cam1',
    token: 'U',
    qs: 'token=U',
  },
  { name: 'mp4: prefix and slashes stripped', app: 'vod/', arg: 'mp4:/movie', stream: 'vod/movie', qs: '' },
  { name: 'nested app path', app: 'chats', arg: 'my/chat-15', stream: 'chats/my/chat-15', qs: '' },
  { name: 'no token at all', app: 'live', arg: 'cam1', stream: 'live/cam1', qs: '' },
];

for (const c of cases) {
  test(`rtmp credentials: ${c.name}`, () => {
    const t = rtmpTarget({ app: c.app, ...(c.tcUrl ? { tcUrl: c.tcUrl } : {}) }, c.arg);
    assert.equal(t.name, c.stream);
    assert.equal(t.token, c.token);
    assert.equal(t.qs, c.qs);
  });
}

test('rtmp credentials: other query parameters (password) reach the session manager', () => {
  const t = rtmpTarget({ app: 'live' }, 'cam1?password=p1&token=T');
  assert.equal(t.query.get('password'), 'p1');
  assert.equal(t.query.get('token'), 'T');
});

test('rtmp credentials: connectInfo keeps the string fields of the connect object and nothing else', () => {
  assert.deepEqual(
    connectInfo({
      app: 'live?token=T',
      tcUrl: 'rtmp://h/live',
      flashVer: 'FMLE/3.0 (compatible; Lavf59.27.100)',
      pageUrl: 'https://example.com/',
      type: 'nonprivate',
      capabilities: 15,
    }),
    {
      app: 'live?token=T',
      tcUrl: 'rtmp://h/live',
      flashVer: 'FMLE/3.0 (compatible; Lavf59.27.100)',
      pageUrl: 'https://example.com/',
    },
  );
  assert.deepEqual(connectInfo({ app: 7, tcUrl: null, flashVer: ['x'] }), { app: '' });
  assert.deepEqual(connectInfo(undefined), { app: '' });
  assert.deepEqual(connectInfo(['live']), { app: '' });
});
