/**
 * The config used when streamgate starts without `--config` (SPEC §3). Written in the
 * config language and run through the same parser, so the default can never drift from
 * what a user could write, and `check-config` users can copy it as a starting point.
 */
import { parseConfig, formatConfigError } from './parse.js';
import { EMBEDDED_CONFIG_FILE, type Config } from './types.js';

export const EMBEDDED_CONFIG_TEXT = `# streamgate embedded default: used when no --config is given.
http 8080;
rtmp 1935;
rtsp 8554;

# Publishing is open to this machine only until a config says otherwise. There is no
# "allow default", so every other address is refused.
auth_backend loopback_publish {
  allow ip 127.0.0.1/8;
  allow ip ::1;
}

# A moving test pattern with a tone that anyone may play.
stream demo {
  input fake://fake;
}

# Publish to rtmp://HOST:1935/live with stream key cam1 to create live/cam1.
template live {
  prefix live;
  input publish://;
  on_publish auth://loopback_publish;
}
`;

/** Parses the embedded default; a failure is a bug in this file, hence the throw. */
export function loadEmbeddedConfig(): Config {
  const r = parseConfig(EMBEDDED_CONFIG_TEXT, EMBEDDED_CONFIG_FILE);
  if ('errors' in r) {
    throw new Error(`embedded config is invalid:\n${r.errors.map(formatConfigError).join('\n')}`);
  }
  return r.config;
}
