/**
 * Which directive may appear in which context of the config file, and what to tell a user
 * who wrote one in the wrong place or misspelt it. One table, read by the syntax stage
 * (to split statements that lost their `;`) and by the meaning stage (to word the error),
 * so the two can never disagree about what a keyword is.
 */
import { LIMIT_NAMES } from '../core/limits.js';
import type { Token } from './lexer.js';
import type { ProtocolSwitch } from './types.js';

/** The block a statement sits in; `other` is the inside of a block that takes no directives. */
export type Ctx =
  'global' | 'auth_backend' | 'stream' | 'template' | 'protocols' | 'playback_headers' | 'limits' | 'other';
export type DirectiveCtx = Exclude<Ctx, 'other'>;

/** Switches a `protocols` block may name (AUTH-SPEC §8.2). */
export const PROTOCOL_SWITCHES: readonly ProtocolSwitch[] = [
  'hls',
  'dash',
  'player',
  'mss',
  'rtmp',
  'rtsp',
  'm4f',
  'm4s',
  'mseld',
  'tshttp',
  'webrtc',
  'srt',
  'shoutcast',
  'mp4',
  'jpeg',
  'api',
];

const STREAM_DIRECTIVES = [
  'input',
  'url',
  'on_play',
  'on_publish',
  'auth',
  'password',
  'rtmp_auth',
  'protocols',
  'playback_headers',
  'segment_duration',
  'dvr',
  'hls_container',
];

export const DIRECTIVES: Record<DirectiveCtx, readonly string[]> = {
  global: [
    'http',
    'rtmp',
    'rtsp',
    'mysql',
    'edit_auth',
    'session_store',
    'history',
    'no_auto_token',
    'admin_view_disabled',
    'on_play',
    'on_publish',
    'auth',
    'trusted_proxies',
    'http_session_timeout',
    'default_auth_duration',
    'auth_backend',
    'limits',
    'metrics_public',
    'events',
    'file_root',
    'workers',
    'template',
    'stream',
  ],
  auth_backend: ['allow', 'deny', 'backend'],
  stream: [...STREAM_DIRECTIVES, 'template'],
  template: [...STREAM_DIRECTIVES, 'prefix'],
  protocols: ['whitelist', ...PROTOCOL_SWITCHES],
  playback_headers: ['protocols', 'playback', 'header'],
  limits: LIMIT_NAMES,
};

const CTX_LABEL: Record<DirectiveCtx, string> = {
  global: 'at the top level',
  auth_backend: 'inside auth_backend',
  stream: 'inside a stream',
  template: 'inside a template',
  protocols: 'inside protocols',
  playback_headers: 'inside playback_headers',
  limits: 'inside limits',
};

/** The context of the block that directive `head` opens inside `parent`. */
export function childCtx(parent: Ctx, head: string): Ctx {
  if (parent === 'global') {
    if (head === 'stream') return 'stream';
    if (head === 'template') return 'template';
    if (head === 'auth_backend') return 'auth_backend';
    if (head === 'limits') return 'limits';
  }
  if (parent === 'stream' || parent === 'template') {
    if (head === 'protocols') return 'protocols';
    if (head === 'playback_headers') return 'playback_headers';
  }
  return 'other';
}

export function isKeyword(ctx: Ctx, t: Token): boolean {
  return ctx !== 'other' && !t.quoted && DIRECTIVES[ctx].includes(t.value);
}

/** The message for a word that is not a directive of `ctx`: misplaced, misspelt or unknown. */
export function unknownDirectiveMessage(ctx: DirectiveCtx, head: Token): string {
  if (head.quoted) return `expected a directive name, got a quoted string "${head.value}"`;
  const elsewhere = (Object.keys(DIRECTIVES) as DirectiveCtx[]).filter(
    (c) => c !== ctx && DIRECTIVES[c].includes(head.value),
  );
  if (elsewhere.length > 0) {
    const where = elsewhere.map((c) => CTX_LABEL[c]).join(' or ');
    return `'${head.value}' is not allowed ${CTX_LABEL[ctx]} (only ${where})`;
  }
  const guess = suggest(head.value, DIRECTIVES[ctx]);
  const shown = head.value.length > 40 ? `${head.value.slice(0, 40)}…` : head.value;
  return `unknown directive '${shown}'${guess ? `; did you mean '${guess}'?` : ''}`;
}

function editDistance(a: string, b: string): number {
  // Optimal string alignment, so a swapped pair of letters ("inptu") costs 1.
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([]);
    for (let j = 0; j <= b.length; j++) {
      const row = d[i] as number[];
      if (i === 0 || j === 0) {
        row.push(i + j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((d[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, (d[i - 2]?.[j - 2] ?? 0) + 1);
      }
      row.push(v);
    }
  }
  return d[a.length]?.[b.length] ?? Infinity;
}

/** The candidate a typo most likely meant; short words must be closer, so `ab` does not suggest `auth`. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = word.length >= 5 ? 2 : 1;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c);
    if (dist <= bestD && (best === undefined || dist < bestD)) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}
