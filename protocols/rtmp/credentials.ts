/**
 * What an RTMP client asks for, as the session manager needs it (SPEC §4, AUTH-SPEC
 * §3.3): the stream name, the token, and the query. Pure: connect command values and
 * the play/publish argument in, values out.
 *
 * OBS puts the whole stream key (`cam1?token=T`) in the publish argument; ffmpeg and
 * VLC split `rtmp://host/live/cam1?token=T` into app `live` and name `cam1?token=T`,
 * and some clients put the query on the app/tcUrl instead (`rtmp://host/live?token=T`).
 */
import type { Amf0Object, Amf0Value } from '../../src/media/amf0.js';

export interface ConnectInfo {
  app: string;
  tcUrl?: string;
  flashVer?: string;
  pageUrl?: string;
}

export interface RtmpTarget {
  name: string;
  token?: string;
  query: URLSearchParams;
  /** The query as the client sent it (stream-name query, else connect query), for the backend's `qs`. */
  qs: string;
}

/** The connect command object's string fields we use; anything missing or not a string is absent. */
export function connectInfo(commandObject: Amf0Value | undefined): ConnectInfo {
  const o = isObject(commandObject) ? commandObject : {};
  const text = (key: string): string | undefined => {
    const v = o[key];
    return typeof v === 'string' ? v : undefined;
  };
  const tcUrl = text('tcUrl');
  const flashVer = text('flashVer');
  const pageUrl = text('pageUrl');
  return {
    app: text('app') ?? '',
    ...(tcUrl !== undefined ? { tcUrl } : {}),
    ...(flashVer !== undefined ? { flashVer } : {}),
    ...(pageUrl !== undefined ? { pageUrl } : {}),
  };
}

function isObject(v: Amf0Value | undefined): v is Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Apps whose name is not part of the stream name (`rtmp://host/static/demo` plays `demo`). */
const DISCARDED_APPS = new Set(['static', 'rtmp']);

function splitQuery(s: string): [path: string, query: string] {
  const i = s.indexOf('?');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

/** The query part of the connect request: on the app (`live?token=T`) or on tcUrl. */
function connectQuery(c: ConnectInfo): string {
  const [, appQuery] = splitQuery(c.app);
  if (appQuery) return appQuery;
  return c.tcUrl ? splitQuery(c.tcUrl)[1] : '';
}

export function rtmpTarget(connect: ConnectInfo, streamArg: string): RtmpTarget {
  const [rawName, nameQuery] = splitQuery(streamArg);
  const [rawApp] = splitQuery(connect.app);
  const app = rawApp.replace(/^\/+|\/+$/g, '');
  const stream = rawName.replace(/^(mp4|flv|f4v):/, '').replace(/^\/+|\/+$/g, '');
  const name = DISCARDED_APPS.has(app) || app === '' ? stream : stream === '' ? app : `${app}/${stream}`;

  const fromConnect = new URLSearchParams(connectQuery(connect));
  const query = new URLSearchParams(fromConnect);
  // The stream-name query wins over the connect-URL one (SPEC §4).
  for (const key of new Set(new URLSearchParams(nameQuery).keys())) query.delete(key);
  for (const [k, v] of new URLSearchParams(nameQuery)) query.append(k, v);
  const token = query.get('token') ?? undefined;
  return { name, query, qs: nameQuery || connectQuery(connect), ...(token ? { token } : {}) };
}
