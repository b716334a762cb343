/**
 * Template inheritance and name lookup over a parsed Config. Kept apart from the parser
 * so the stream registry can recompute effective configs on reload without re-parsing.
 */
import type { Proto } from '../core/proto.js';
import type { Config, ProtocolsConfig, StreamConfig } from './types.js';

/**
 * The config a stream actually runs with: its own fields, then those of the template it
 * names (`template NAME;`), then the global `on_play` / `on_publish`. Stream values win,
 * except that a stream's legacy `auth` loses to an `on_play` from its template
 * (AUTH-SPEC §6.5). Templates may be passed too; they get only the global defaults.
 */
export function effectiveStreamConfig(stream: StreamConfig, config: Config): StreamConfig {
  const tpl =
    stream.kind === 'stream' && stream.template !== undefined
      ? config.templates.find((t) => t.name === stream.template)
      : undefined;
  const out: StreamConfig = { ...stream, prefixes: [...stream.prefixes], inputs: [...stream.inputs] };
  if (tpl) {
    if (out.inputs.length === 0) out.inputs = [...tpl.inputs];
    if (out.onPlay === undefined || (out.onPlay.legacyAuth && tpl.onPlay && !tpl.onPlay.legacyAuth)) {
      out.onPlay = tpl.onPlay;
    }
    out.onPublish ??= tpl.onPublish;
    out.password ??= tpl.password;
    out.rtmpAuth ??= tpl.rtmpAuth;
    out.protocols ??= tpl.protocols;
    out.playbackHeaders ??= tpl.playbackHeaders;
    out.segmentDuration ??= tpl.segmentDuration;
    out.dvr ??= tpl.dvr;
    out.hlsContainer ??= tpl.hlsContainer;
  }
  out.onPlay ??= config.onPlay;
  out.onPublish ??= config.onPublish;
  // Keep `undefined`-valued keys out so deep-equality checks on reload see no change.
  for (const k of Object.keys(out) as (keyof StreamConfig)[]) {
    if (out[k] === undefined) delete out[k];
  }
  return out;
}

/** Whether `name` falls under a template prefix: `live` serves `live/<anything>`, `""` any name. */
export function matchesPrefix(name: string, prefix: string): boolean {
  return prefix === '' || name.startsWith(`${prefix}/`);
}

/**
 * The effective config for a requested stream name: a static `stream` of that name, else
 * the first template (in file order, R19) whose prefix matches, as a stream of that name
 * inheriting from it. Undefined when nothing serves the name.
 */
export function resolveStreamConfig(name: string, config: Config): StreamConfig | undefined {
  const own = config.streams.find((s) => s.name === name);
  if (own) return effectiveStreamConfig(own, config);
  const tpl = config.templates.find((t) => t.prefixes.some((p) => matchesPrefix(name, p)));
  if (!tpl) return undefined;
  return effectiveStreamConfig(
    { kind: 'stream', name, prefixes: [], inputs: [], template: tpl.name, loc: tpl.loc },
    config,
  );
}

/**
 * AUTH-SPEC §8.2: everything is allowed by default; `whitelist` allows only the protocols set
 * true, otherwise a protocol set false is forbidden.
 */
export function protocolAllowed(protocols: ProtocolsConfig | undefined, proto: Proto): boolean {
  if (protocols === undefined) return true;
  const flag = protocols.flags[proto];
  return protocols.whitelist ? flag === true : flag !== false;
}
