import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaBus, longGopWarning } from '../../../src/media/bus.js';

test('bus: the longest keyframe gap of the current source, and the warning that names OBS\u2019s setting', () => {
  const bus = new MediaBus();
  bus.startSource({ video: { kind: 'video', codec: 'h264', config: Buffer.alloc(7) } });
  const key = (s: number, keyframe = true) =>
    bus.push({ kind: 'video', dts: s * 90_000, pts: s * 90_000, keyframe, data: Buffer.of(0, 0, 0, 1, 5) });
  key(0);
  assert.equal(bus.keyframeIntervalS, undefined, 'one keyframe says nothing yet');
  key(5, false);
  key(10);
  key(12);
  assert.equal(bus.keyframeIntervalS, 10);
  assert.match(
    longGopWarning(bus.keyframeIntervalS) ?? '',
    /^keyframe interval 10\.0 s .* 2 s HLS segment.*OBS: .*Keyframe Interval\) to 2 s$/,
  );
  assert.equal(longGopWarning(bus.keyframeIntervalS, 6), undefined, 'fine for 6 s segments');
  assert.equal(longGopWarning(4), undefined, 'twice the segment is fine');
  bus.startSource({ video: { kind: 'video', codec: 'h264', config: Buffer.alloc(7) } });
  assert.equal(bus.keyframeIntervalS, undefined, 'a new source starts over');
});
