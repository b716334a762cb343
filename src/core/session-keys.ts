/** The values a session identity is built from (AUTH-SPEC §3.1). */

/** A session key: one of the four named values, or `query:<param>` (AUTH-SPEC A6). */
export type SessionKey = 'ip' | 'name' | 'proto' | 'token' | `query:${string}`;

/** AUTH-SPEC §3.1 / A2: the keys used when a spec names none. */
export const DEFAULT_SESSION_KEYS: readonly SessionKey[] = ['name', 'ip', 'proto', 'token'];
