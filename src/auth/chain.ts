/**
 * `auth://NAME` chains, the authorization configurator (AUTH-SPEC §6): static rules first,
 * then every `backend` asked in parallel and their answers combined by a fixed precedence
 * (§6.3), then `allow default`. The combination is a pure function so each precedence row is
 * tested without a network.
 */
import type { AuthBackendConfig } from '../config/types.js';
import type { AuthBackend, AuthContext, AuthDecision, AuthRequest } from './backend.js';
import { evaluateRules, type RuleMatch } from './rules.js';

export interface ChainOptions {
  defaultAuthDuration: number;
  /** GeoIP lookup; without one, country rules never match (AUTH-SPEC §6.4). */
  country?: (ip: string) => string | undefined;
}

/** A static rule's verdict (AUTH-SPEC §6.2): allow with no user id, or a cached denial. */
export function ruleDecision(m: RuleMatch, defaultSec: number): AuthDecision {
  return m.action === 'allow'
    ? { kind: 'allow', authDurationSec: defaultSec }
    : { kind: 'deny', status: 403, authDurationSec: defaultSec, reason: `rule_denied_${m.kind}` };
}

/**
 * AUTH-SPEC §6.3 / A20. `results` are in configured order. When every backend is unavailable,
 * a session that has not started is allowed only with `allow default` (and then stays in retry
 * mode); without it the result is `unavailable`, which refuses a new client without caching a
 * denial, since nobody actually said no. A started session keeps its state (§4.3).
 */
export function combineChain(
  results: readonly AuthDecision[],
  allowDefault: boolean,
  started: boolean,
  defaultSec: number,
): AuthDecision {
  const allow = results.find((r) => r.kind === 'allow');
  if (allow) return allow;
  const redirect = results.find((r) => r.kind === 'redirect');
  if (redirect) return redirect;
  const deny = results.find((r) => r.kind === 'deny');
  if (deny) return deny;
  if (!started && allowDefault) return { kind: 'allow', authDurationSec: defaultSec, retry: true };
  return { kind: 'unavailable', reason: 'connect' };
}

export class ChainBackend implements AuthBackend {
  private warnedCountry = false;

  constructor(
    private readonly cfg: AuthBackendConfig,
    private readonly members: readonly AuthBackend[],
    private readonly opts: ChainOptions,
    private readonly warn: (msg: string) => void = () => undefined,
  ) {}

  async check(req: AuthRequest, ctx: AuthContext): Promise<AuthDecision> {
    const defaultSec = this.opts.defaultAuthDuration;
    if (
      !this.warnedCountry &&
      this.opts.country === undefined &&
      this.cfg.rules.some((r) => r.kind === 'country')
    ) {
      this.warnedCountry = true;
      this.warn(`auth_backend ${this.cfg.name}: no GeoIP database, country rules never match`);
    }
    const match = evaluateRules(this.cfg.rules, {
      token: req.token,
      ip: req.ip,
      userAgent: req.user_agent,
      country: this.opts.country?.(req.ip),
    });
    if (match) return ruleDecision(match, defaultSec);
    if (this.members.length === 0) {
      // AUTH-SPEC §6.2 step 10: nothing matched and nobody to ask.
      return this.cfg.allowDefault
        ? { kind: 'allow', authDurationSec: defaultSec }
        : { kind: 'deny', status: 403, authDurationSec: defaultSec, reason: 'chain_default_deny' };
    }
    const results = await Promise.all(
      this.members.map((b) =>
        b.check(req, ctx).catch((): AuthDecision => ({ kind: 'unavailable', reason: 'error' })),
      ),
    );
    return combineChain(results, this.cfg.allowDefault, req.request_type === 'update_session', defaultSec);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close?.()));
  }
}
