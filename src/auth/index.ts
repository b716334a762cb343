/**
 * Builds the backend an `on_play` / `on_publish` value names (SPEC §2): `http(s)://` URLs,
 * `auth://NAME` chains, and script paths. The signed-token schemes (`jwt://`, `ks://`,
 * `securetoken://`) are built in (token-backends.ts); `schemes` may add or replace schemes. An
 * unknown one yields a backend that is always unavailable, which refuses new sessions rather
 * than letting them through.
 */
import type { AuthBackendConfig, AuthSpec, Config } from '../config/types.js';
import type { AuthBackend, AuthDecision } from './backend.js';
import { ChainBackend } from './chain.js';
import { HttpBackend } from './http-backend.js';
import { createScriptBackend, isScriptPath } from './script-backend.js';
import { tokenBackendFactory } from './token-backends.js';

export type { AuthBackend, AuthDecision, AuthRequest, AuthContext } from './backend.js';

export interface CreateBackendOptions {
  /** Factories for further URL schemes, keyed without `://` (e.g. `jwt`). */
  schemes?: Record<string, (spec: AuthSpec, config: Config) => AuthBackend>;
  country?: (ip: string) => string | undefined;
  warn?: (msg: string) => void;
  /** Milliseconds since the epoch for the token verifiers' expiry checks (the manager's clock). */
  now?: () => number;
}

const unsupported: AuthBackend = {
  check: (): Promise<AuthDecision> => Promise.resolve({ kind: 'unavailable', reason: 'unsupported' }),
};

export function createBackend(spec: AuthSpec, config: Config, opts: CreateBackendOptions = {}): AuthBackend {
  const defaultAuthDuration = config.defaultAuthDuration;
  const url = spec.url;
  if (url === 'true') {
    return { check: () => Promise.resolve({ kind: 'allow', authDurationSec: defaultAuthDuration }) };
  }
  if (isScriptPath(url)) {
    return createScriptBackend(spec, { defaultAuthDuration, configSource: config.source });
  }
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'http' || scheme === 'https') return new HttpBackend(spec, { defaultAuthDuration });
  if (scheme === 'auth') {
    const name = url.slice('auth://'.length).replace(/\/+$/, '');
    const chain: AuthBackendConfig | undefined = config.authBackends.get(name);
    if (chain === undefined) {
      opts.warn?.(`auth_backend ${name} is not defined; sessions using it are refused`);
      return unsupported;
    }
    const members = chain.backends.map((b) => createBackend(b, config, opts));
    return new ChainBackend(chain, members, { defaultAuthDuration, country: opts.country }, opts.warn);
  }
  const factory = opts.schemes?.[scheme];
  if (factory) return factory(spec, config);
  const builtin = tokenBackendFactory(scheme);
  if (builtin) return builtin(spec, config, { warn: opts.warn, now: opts.now });
  opts.warn?.(`auth backend scheme ${scheme}:// is not supported; sessions using it are refused`);
  return unsupported;
}
