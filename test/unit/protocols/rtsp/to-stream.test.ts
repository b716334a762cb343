import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { splitAvcc } from '../../../../src/media/h264.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { RtpToFrames } from '../../../../protocols/rtsp/to-stream.js';
import { RtspReader } from '../../../../protocols/rtsp/wire/message.js';
import { announcedTracks, parseSdp } from '../../../../protocols/rtsp/wire/sdp.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

const capture = readFileSync(new URL('../../../fixtures/rtsp/ffmpeg-publish-tcp.bin', import.meta.url));

/** Replays the ffmpeg capture the way RtspConn does: ANNOUNCE's SDP, then channels 0-1 video, 2-3 audio. */
function replay(): { tracks: Tracks[]; frames: Frame[] } {
  const items = new RtspReader(READER_LIMITS).push(capture);
  let ingest: RtpToFrames | undefined;
  const tracks: Tracks[] = [];
  const frames: Frame[] = [];
  for (const item of items) {
    if (item.kind === 'request' && item.request.method === 'ANNOUNCE') {
      ingest = new RtpToFrames(announcedTracks(parseSdp(item.request.body.toString())));
    } else if (item.kind === 'interleaved' && ingest) {
      const kind = item.channel < 2 ? 'video' : 'audio';
      if (item.channel % 2 === 1) {
        ingest.rtcp(kind, item.payload);
        continue;
      }
      const r = ingest.rtp(kind, item.payload);
      if (r.tracks) tracks.push(r.tracks);
      frames.push(...r.frames);
    }
  }
  return { tracks, frames };
}

test('rtsp ingest: 2 s of ffmpeg RTSP publish become 50 pictures and the AAC frames', () => {
  const { tracks, frames } = replay();
  assert.equal(tracks.length, 1, 'tracks announced once');
  assert.equal(tracks[0]?.video?.width, 320);
  assert.equal(tracks[0]?.video?.height, 240);
  assert.equal(tracks[0]?.audio?.sampleRate, 44100);
  const video = frames.filter((f) => f.kind === 'video');
  const audio = frames.filter((f) => f.kind === 'audio');
  assert.equal(video.length, 50);
  assert.ok(audio.length >= 80 && audio.length <= 88, `audio frames ${audio.length}`);
  assert.equal(video[0]?.keyframe, true);
  assert.equal(video.filter((f) => f.keyframe).length, 2, 'GOP of 25 at 25 fps');
  for (const f of video) assert.ok(splitAvcc(f.data).length > 0);
  const gaps = video.slice(1).map((f, i) => f.pts - (video[i]?.pts ?? 0));
  assert.ok(
    gaps.every((g) => g === 3600),
    '25 fps on the 90 kHz clock',
  );
  const agaps = audio.slice(1).map((f, i) => f.pts - (audio[i]?.pts ?? 0));
  assert.ok(
    agaps.every((g) => Math.abs(g - 2090) <= 1),
    '1024 samples at 44.1 kHz',
  );
});

test('rtsp ingest: audio and video are aligned through the RTCP sender reports', () => {
  const { frames } = replay();
  const v0 = frames.find((f) => f.kind === 'video')?.pts ?? NaN;
  const a0 = frames.find((f) => f.kind === 'audio')?.pts ?? NaN;
  // Both encoders start at the same instant; AAC priming puts audio at most a few frames earlier.
  assert.ok(Math.abs(v0 - a0) < 9000, `first video ${v0} vs first audio ${a0} (90 kHz)`);
  assert.ok(v0 > 0 && a0 > 0, 'no negative timestamps');
});

test('rtsp ingest: garbage RTP is an RtspProtocolError, and the next good packet still works', () => {
  const items = new RtspReader(READER_LIMITS).push(capture);
  const announce = items.find((i) => i.kind === 'request' && i.request.method === 'ANNOUNCE');
  assert.ok(announce?.kind === 'request');
  const ingest = new RtpToFrames(announcedTracks(parseSdp(announce.request.body.toString())));
  assert.throws(() => ingest.rtp('video', Buffer.from([1, 2, 3])), { name: 'RtspProtocolError' });
  let frames = 0;
  for (const i of items) {
    if (i.kind === 'interleaved' && i.channel === 2) frames += ingest.rtp('audio', i.payload).frames.length;
  }
  assert.ok(frames > 80);
});
