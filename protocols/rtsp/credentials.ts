/**
 * What an RTSP request asks for, as the session manager needs it (SPEC §4, AUTH-SPEC §3.3,
 * §7.3): the stream name, the token from the URL query, and the query itself. Pure.
 *
 * Clients build per-track URLs differently, and the name must come out the same for all:
 * ffmpeg appends the SDP control to the whole URL, query included
 * (`rtsp://h/live/cam1?token=T/streamid=0`, see test/fixtures/rtsp), GStreamer resolves it
 * against Content-Base (`rtsp://h/live/cam1?token=T/trackID=0` with our Content-Base).
 */
import { isValidStreamName } from '../../src/streams/names.js';

export interface RtspTarget {
  /** Stream name without leading slash, query or track control. */
  readonly name: string;
  readonly query: URLSearchParams;
  /** The query as the client sent it, for the backend's `qs`. */
  readonly qs: string;
  readonly token?: string;
  /** `trackID=N` / `streamid=N` when the URL names one track (SETUP). */
  readonly control?: string;
  /** `host:port` of the URL, for the session's `host`. */
  readonly host?: string;
  /** The URL without its track control and trailing slash: the base for Content-Base and RTP-Info. */
  readonly base: string;
  readonly valid: boolean;
}

const URL_HEAD = /^(rtsps?:\/\/)([^/?]*)(.*)$/i;
const TRACK_CONTROL = /\/((?:trackID|streamid)=\d+)\/?$/i;
/** Apps whose name is not part of the stream name, as for RTMP (`rtsp://host/static/demo` plays `demo`). */
const DISCARDED_FIRST = 'static/';

export function rtspTarget(uri: string): RtspTarget {
  const head = URL_HEAD.exec(uri);
  const authority = head?.[2] ?? '';
  let rest = head ? (head[3] ?? '') : uri;
  let control: string | undefined;
  const c = TRACK_CONTROL.exec(rest);
  if (c) {
    control = c[1];
    rest = rest.slice(0, c.index);
  }
  rest = rest.replace(/\/+$/, '');
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const qs = q < 0 ? '' : rest.slice(q + 1);
  let name = '';
  let valid = true;
  try {
    name = decodeURIComponent(path).replace(/^\/+|\/+$/g, '');
  } catch {
    valid = false;
  }
  if (name.startsWith(DISCARDED_FIRST)) name = name.slice(DISCARDED_FIRST.length);
  valid = valid && isValidStreamName(name);
  const query = new URLSearchParams(qs);
  const token = query.get('token') ?? undefined;
  const host = authority.replace(/^.*@/, '');
  return {
    name,
    query,
    qs,
    base: `${head ? `${head[1] ?? ''}${authority}` : ''}${rest}`,
    valid,
    ...(token ? { token } : {}),
    ...(control ? { control } : {}),
    ...(host ? { host } : {}),
  };
}
