/**
 * The HTTP surface as a contract: an OpenAPI 3.1 document served at `/api/openapi.json`.
 * test/unit/http/openapi.test.ts walks the router of a real server both ways — every
 * documented path and method is routed, every route and method is documented — so this file
 * cannot drift from the code without a test failing.
 */
import type { HttpRouter } from './router.js';
import { pathPattern } from './router.js';
import { apiRoute, sendJson } from './api.js';
import { packageVersion } from '../package-info.js';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description = 'OK'): Json => ({
  description,
  content: { 'application/json': { schema } },
});
const error = (description: string): Json => json(ref('Error'), description);
const query = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});
const pathParam = (name: string, description: string): Json => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});
const paging = [
  query('limit', 'Page length (default 1000, at most 10000).', {
    type: 'integer',
    minimum: 1,
    maximum: 10_000,
  }),
  query('offset', 'Items to skip.', { type: 'integer', minimum: 0 }),
];
const pageOf = (key: string, item: Json): Json => ({
  type: 'object',
  required: [key, 'limit', 'offset', 'next_offset'],
  properties: {
    [key]: { type: 'array', items: item },
    total: { type: 'integer' },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
    next_offset: { type: ['integer', 'null'] },
  },
});
const jsonBody = (schema: Json): Json => ({ required: false, content: { 'application/json': { schema } } });
const text = (type: string, description: string): Json => ({ description, content: { [type]: {} } });
const denied = {
  '401': error('edit_auth is configured and the request has no valid Basic credentials.'),
  '403': error('No edit_auth and the client is not on loopback.'),
};

const PLAYBACK_NOTE =
  'Playback route (SPEC §4). Refusals are short plain text (`403 backend_denied`, AUTH-SPEC §5.3), not JSON.';

export const OPENAPI: Json = {
  openapi: '3.1.0',
  info: {
    title: 'streamgate',
    version: packageVersion(),
    description:
      'The operator API, metrics, health, admin UI and playback routes of the HTTP listener. /api and /admin ' +
      '(and /metrics, /health unless `metrics_public;`) need `edit_auth` Basic credentials, or come from ' +
      'loopback when no edit_auth is set; the client address honours X-Forwarded-For only from ' +
      'configured trusted proxies. API errors are `{"error":{"code","message"}}`.',
  },
  components: {
    securitySchemes: { basic: { type: 'http', scheme: 'basic' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
      Stream: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          input: { type: 'object' },
          tracks: { type: 'object' },
          clients: { type: 'object', additionalProperties: { type: 'integer' } },
          auth: { type: 'object' },
        },
      },
      Session: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          id_key: { type: 'string' },
          type: { enum: ['play', 'publish'] },
          name: { type: 'string' },
          proto: { enum: ['rtmp', 'rtsp', 'hls', 'tshttp'] },
          ip: { type: 'string' },
          user_id: { type: ['string', 'null'] },
          token_hash: { type: 'string' },
          bytes: { type: 'integer' },
          opened_at: { type: 'integer' },
        },
      },
      HistoryRow: { type: 'object' },
      Ban: { type: 'object' },
    },
  },
  security: [{ basic: [] }],
  paths: {
    '/health': { get: { summary: 'Liveness', responses: { '200': json({ type: 'object' }), ...denied } } },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics (README "Metrics")',
        responses: { '200': text('text/plain', 'Prometheus text exposition 0.0.4'), ...denied },
      },
    },
    '/api/openapi.json': {
      get: { summary: 'This document', responses: { '200': json({ type: 'object' }), ...denied } },
    },
    '/api/streams': {
      get: {
        summary: 'Streams: input state, tracks, clients per protocol, auth settings',
        parameters: paging,
        responses: { '200': json(pageOf('streams', ref('Stream'))), '400': error('Bad paging.'), ...denied },
      },
    },
    '/api/streams/{name}': {
      get: {
        summary: 'One stream (the name may contain /)',
        parameters: [pathParam('name', 'Stream name, e.g. live/cam1')],
        responses: { '200': json(ref('Stream')), '404': error('stream_not_found'), ...denied },
      },
    },
    '/api/streams/{name}/dvr': {
      get: {
        summary: 'The DVR archive of a stream: recorded ranges, bytes, oldest and newest, write errors',
        parameters: [pathParam('name', 'Stream name, e.g. live/cam1')],
        responses: { '200': json({ type: 'object' }), '404': error('dvr_not_enabled'), ...denied },
      },
    },
    '/api/config/reload': {
      post: {
        summary: 'Reload the config file (like SIGHUP)',
        responses: { '200': json({ type: 'object' }), '400': error('config_invalid'), ...denied },
      },
    },
    '/api/sessions': {
      get: {
        summary: 'Open sessions',
        parameters: [
          query('name', 'Stream name'),
          query('user_id', 'User id'),
          query('proto', 'rtmp, rtsp, hls, tshttp or mp4'),
          ...paging,
        ],
        responses: {
          '200': json(pageOf('sessions', ref('Session'))),
          '400': error('bad_proto, bad_page'),
          ...denied,
        },
      },
    },
    '/api/sessions/reauth': {
      post: {
        summary: 'Re-check every session of a stream now (AUTH-SPEC §1.1)',
        parameters: [query('name', 'Stream name (required)')],
        responses: {
          '200': json({ type: 'object', properties: { estimated_count: { type: 'integer' } } }),
          '400': error('name_required'),
          '404': error('stream_not_found'),
          ...denied,
        },
      },
    },
    '/api/sessions/{id}': {
      get: {
        summary: 'One open session',
        parameters: [pathParam('id', 'Session id')],
        responses: { '200': json(ref('Session')), '404': error('session_not_found'), ...denied },
      },
      delete: {
        summary: 'Kick: close the session without banning (AUTH-SPEC §9.1)',
        parameters: [pathParam('id', 'Session id')],
        responses: { '204': { description: 'Closed' }, '404': error('session_not_found'), ...denied },
      },
    },
    '/api/history': {
      get: {
        summary: 'Closed sessions, newest first',
        parameters: [
          query('user_id', 'User id'),
          query('name', 'Stream name'),
          query('from', 'Closed at or after (epoch ms or ISO 8601)'),
          query('to', 'Closed at or before (epoch ms or ISO 8601)'),
          ...paging,
        ],
        responses: {
          '200': json(pageOf('history', ref('HistoryRow'))),
          '400': error('bad_filter, bad_page'),
          ...denied,
        },
      },
    },
    '/api/bans': {
      get: {
        summary: 'Bans and cached denials',
        parameters: paging,
        responses: { '200': json(pageOf('bans', ref('Ban'))), ...denied },
      },
      post: {
        summary: "Ban an open session's identity and close the session",
        requestBody: jsonBody({
          type: 'object',
          required: ['session_id'],
          properties: { session_id: { type: 'string' }, seconds: { type: 'integer', default: 3600 } },
        }),
        responses: {
          '201': json({
            type: 'object',
            properties: { id_key: { type: 'string' }, until: { type: 'integer' } },
          }),
          '400': error('session_id_required, bad_seconds, bad_json'),
          '404': error('session_not_found'),
          ...denied,
        },
      },
    },
    '/api/bans/{key}': {
      delete: {
        summary: 'Lift a ban or cached denial (AUTH-SPEC §4.5)',
        parameters: [pathParam('key', 'Identity key')],
        responses: { '204': { description: 'Lifted' }, '404': error('ban_not_found'), ...denied },
      },
    },
    '/api/tokens': {
      post: {
        summary: 'Mint an admin view token (AUTH-SPEC §7.5)',
        requestBody: jsonBody({ type: 'object', properties: { kind: { const: 'admin' } } }),
        responses: {
          '200': json({
            type: 'object',
            properties: { token: { type: 'string' }, expires_at: { type: 'integer' } },
          }),
          '400': error('unsupported_kind, bad_json'),
          '405': error('admin_view_disabled'),
          ...denied,
        },
      },
    },
    '/api/auth/explain': {
      post: {
        summary: 'Dry run of authorization for a URL a client would open',
        description:
          'Shows the extracted name, protocol and token, the session keys and identity key, the cached state, ' +
          'the local check that would refuse, and the backend request that would be sent. Opens no session; ' +
          'calls the backend only with ?call=true.',
        parameters: [query('call', 'true: also send the backend request and show its answer')],
        requestBody: jsonBody({
          type: 'object',
          required: ['url'],
          properties: {
            url: {
              type: 'string',
              examples: ['rtmp://host/live/cam1?token=T', 'http://host/demo/index.m3u8'],
            },
            ip: { type: 'string', description: 'Client address; default: the caller' },
            kind: { enum: ['play', 'publish'] },
            referer: { type: 'string' },
            user_agent: { type: 'string' },
          },
        }),
        responses: {
          '200': json({ type: 'object' }),
          '400': error('url_required, bad_url, bad_ip, bad_kind'),
          ...denied,
        },
      },
    },
    '/api/live': {
      get: {
        summary: 'Live state for the admin page (Server-Sent Events; each `state` event is JSON)',
        responses: {
          '200': text('text/event-stream', 'event: state, data: {streams, sessions, bans, …}'),
          '503': error('too_many_live_clients'),
          ...denied,
        },
      },
    },
    '/admin': {
      get: { summary: 'Redirect to /admin/', responses: { '301': { description: 'To /admin/' } } },
    },
    '/admin/': {
      get: { summary: 'Admin UI', responses: { '200': text('text/html', 'The page'), ...denied } },
    },
    '/admin/admin.js': {
      get: { summary: 'Admin UI script', responses: { '200': text('text/javascript', 'Script'), ...denied } },
    },
    '/admin/hls.min.js': {
      get: {
        summary: 'hls.js for the admin player',
        responses: { '200': text('text/javascript', 'Script') },
      },
    },
    '/{name}/index.m3u8': playbackGet('HLS playlist', 'application/vnd.apple.mpegurl', 'Playlist'),
    '/{name}/mono.m3u8': playbackGet('HLS media playlist', 'application/vnd.apple.mpegurl', 'Playlist'),
    '/{name}/mono-{seq}.ts': playbackGet('HLS segment', 'video/mp2t', 'Segment'),
    '/{name}/mono-{seq}.m4s': playbackGet('HLS fMP4 segment (`?container=fmp4`)', 'video/mp4', 'Segment'),
    '/{name}/init-{seq}.mp4': playbackGet('HLS fMP4 init segment (EXT-X-MAP)', 'video/mp4', 'Init segment'),
    '/{name}/index-{from}-{duration}.m3u8': playbackGet(
      'DVR: a time range as a VOD playlist (FROM Unix seconds, DURATION seconds; `now` for EVENT to the live edge)',
      'application/vnd.apple.mpegurl',
      'Playlist',
    ),
    '/{name}/timeshift_abs-{from}.m3u8': playbackGet(
      'DVR: live, delayed from FROM',
      'application/vnd.apple.mpegurl',
      'Playlist',
    ),
    '/{name}/archive-{from}-{duration}.ts': playbackGet('DVR export as MPEG-TS', 'video/mp2t', 'File'),
    '/{name}/archive-{from}-{duration}.mp4': playbackGet(
      'DVR export as MP4 (moov first)',
      'video/mp4',
      'File',
    ),
    '/{name}/dvr-{start}.ts': playbackGet(
      'DVR archive segment (listed by the archive playlists)',
      'video/mp2t',
      'Segment',
    ),
    '/{name}/mpegts': {
      get: {
        summary: 'HTTP MPEG-TS play',
        description: PLAYBACK_NOTE,
        security: [],
        responses: { '200': text('video/mp2t', 'Live TS') },
      },
      put: {
        summary: 'HTTP MPEG-TS publish (chunked body)',
        description: PLAYBACK_NOTE,
        security: [],
        responses: { '200': { description: 'Ended' } },
      },
      post: {
        summary: 'HTTP MPEG-TS publish (chunked body)',
        description: PLAYBACK_NOTE,
        security: [],
        responses: { '200': { description: 'Ended' } },
      },
      options: {
        summary: 'CORS preflight',
        security: [],
        responses: { '204': { description: 'Preflight' } },
      },
    },
  },
};

/** A playback resource: GET (HEAD) gated by the session manager, and its CORS preflight. */
function playbackGet(summary: string, type: string, what: string): Json {
  return {
    get: { summary, description: PLAYBACK_NOTE, security: [], responses: { '200': text(type, what) } },
    options: { summary: 'CORS preflight', security: [], responses: { '204': { description: 'Preflight' } } },
  };
}

export function registerOpenApiRoute(router: HttpRouter): void {
  router.add(
    'GET',
    pathPattern('/api/openapi.json'),
    apiRoute((_req, res) => sendJson(res, 200, OPENAPI)),
  );
}
