import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rtspTarget } from '../../../../protocols/rtsp/credentials.js';

const cases: { name: string; uri: string; name_: string; token?: string; control?: string; base: string }[] =
  [
    { name: 'plain', uri: 'rtsp://h:8554/live/cam1', name_: 'live/cam1', base: 'rtsp://h:8554/live/cam1' },
    {
      name: 'token query',
      uri: 'rtsp://h:8554/live/cam1?token=T&x=1',
      name_: 'live/cam1',
      token: 'T',
      base: 'rtsp://h:8554/live/cam1?token=T&x=1',
    },
    {
      name: 'ffmpeg SETUP: control appended after the query',
      uri: 'rtsp://127.0.0.1:18554/live/cam1?token=abc/streamid=0',
      name_: 'live/cam1',
      token: 'abc',
      control: 'streamid=0',
      base: 'rtsp://127.0.0.1:18554/live/cam1?token=abc',
    },
    {
      name: 'GStreamer SETUP: control against Content-Base without query',
      uri: 'rtsp://h/live/cam1/trackID=1',
      name_: 'live/cam1',
      control: 'trackID=1',
      base: 'rtsp://h/live/cam1',
    },
    {
      name: 'PLAY of the Content-Base (trailing slash)',
      uri: 'rtsp://h/live/cam1?token=T/',
      name_: 'live/cam1',
      token: 'T',
      base: 'rtsp://h/live/cam1?token=T',
    },
    {
      name: 'static prefix as for RTMP',
      uri: 'rtsp://h/static/demo',
      name_: 'demo',
      base: 'rtsp://h/static/demo',
    },
    {
      name: 'credentials in the authority',
      uri: 'rtsp://u:p@h/live/a',
      name_: 'live/a',
      base: 'rtsp://u:p@h/live/a',
    },
  ];

for (const c of cases) {
  test(`rtsp target: ${c.name}`, () => {
    const t = rtspTarget(c.uri);
    assert.equal(t.valid, true);
    assert.equal(t.name, c.name_);
    assert.equal(t.token, c.token);
    assert.equal(t.control, c.control);
    assert.equal(t.base, c.base);
  });
}

test('rtsp target: invalid names are flagged, never thrown', () => {
  for (const uri of ['rtsp://h/', 'rtsp://h/a%ZZ', 'rtsp://h/api/x', 'rtsp://h/a b', '*']) {
    assert.equal(rtspTarget(uri).valid, false, uri);
  }
  assert.equal(rtspTarget('rtsp://h/live/cam1').host, 'h');
});
