/**
 * The `streamgate` command line (SPEC §1) and the composition root: the only module
 * that imports both the core and the protocol adapters.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { createDvrAdapter } from '../protocols/dvr/index.js';
import { createHlsAdapter } from '../protocols/hls/index.js';
import { createMpegtsAdapter } from '../protocols/mpegts/index.js';
import { createRtmpAdapter } from '../protocols/rtmp/index.js';
import { createRtspAdapter } from '../protocols/rtsp/index.js';
import { runTokenCli } from './cli/token.js';
import { checkConfigFile, loadConfigFile } from './config/load.js';
import { loadEmbeddedConfig } from './config/default.js';
import { formatConfigError } from './config/parse.js';
import type { Config } from './config/types.js';
import { createLogger } from './log.js';
import type { AdapterFactory } from './adapter.js';
import { displayHost, startServer } from './server.js';
import { runPrimary, workerCount } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';

const USAGE = `Usage:
  streamgate [--config FILE]        run the server (embedded demo config without --config)
  streamgate check-config FILE      validate a config file; errors as FILE:LINE:COL: message
  streamgate token mint|verify ...  mint or explain signed tokens (ks, jwt, securetoken, admin)
  streamgate --help                 this text

Environment: LOG_LEVEL (info), FFMPEG_PATH (the ffmpeg used for pulled inputs).
Exit codes: 0 success, 2 bad usage or config.`;

const CHECK_USAGE = `Usage: streamgate check-config FILE
Validates FILE and prints each error as FILE:LINE:COL: message. Exit 0 when valid, 2 otherwise.`;

const adapters: AdapterFactory[] = [
  (core) => {
    const listen = core.config().rtmp;
    return listen
      ? createRtmpAdapter(listen, {
          registry: core.registry,
          sessions: core.sessions,
          log: core.log,
          config: core.config,
        })
      : undefined;
  },
  (core) => {
    const listen = core.config().rtsp;
    return listen
      ? createRtspAdapter(listen, {
          registry: core.registry,
          sessions: core.sessions,
          log: core.log,
          config: core.config,
        })
      : undefined;
  },
  (core) => (core.config().http ? createHlsAdapter(core) : undefined),
  (core) => (core.config().http ? createMpegtsAdapter(core) : undefined),
  (core) => (core.config().http ? createDvrAdapter(core) : undefined),
];

async function readConfig(file: string): Promise<Config | string[]> {
  const result = await loadConfigFile(file);
  return 'errors' in result ? result.errors.map(formatConfigError) : result.config;
}

async function checkConfig(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(CHECK_USAGE + '\n');
    return 0;
  }
  const [file, ...rest] = argv;
  if (!file || rest.length > 0) {
    process.stderr.write(CHECK_USAGE + '\n');
    return 2;
  }
  const result = await checkConfigFile(file);
  for (const line of result.stdout) process.stdout.write(line + '\n');
  for (const line of result.stderr) process.stderr.write(line + '\n');
  return result.exitCode;
}

async function run(argv: string[]): Promise<number> {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const file = values.config;
  const loaded = file ? await readConfig(file) : loadEmbeddedConfig();
  if (Array.isArray(loaded)) {
    for (const line of loaded) process.stderr.write(line + '\n');
    return 2;
  }
  const log = createLogger();
  // `workers N` (src/cluster/): the primary forks N copies of this command that share the listeners.
  const reloadFromDisk = async (): Promise<Config> => {
    const next = await readConfig(file as string);
    if (Array.isArray(next)) throw new Error(next.join('; '));
    return next;
  };
  if (cluster.isWorker) {
    return runWorker({ config: loaded, log, adapters, ...(file ? { reloadFromDisk } : {}) });
  }
  const count = workerCount(loaded);
  if (count > 1) {
    return runPrimary({
      count,
      log,
      ...(file ? { readConfig: () => readConfig(file) } : {}),
      announce: (addresses) => announce(loaded, file, log, addresses),
    });
  }
  let server;
  try {
    server = await startServer(loaded, {
      log,
      adapters,
      ...(file
        ? {
            reloadFromDisk: async () => {
              const next = await readConfig(file);
              if (Array.isArray(next)) throw new Error(next.join('; '));
              return next;
            },
          }
        : {}),
    });
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot start');
    return 2;
  }
  announce(loaded, file, log, server.addresses());

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      server.stop().then(resolve, (err: unknown) => {
        log.error({ err: (err as Error).message }, 'shutdown error');
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => {
      if (!file) {
        log.warn('SIGHUP ignored: running on the embedded config, there is no file to reload');
        return;
      }
      readConfig(file)
        .then((next) => {
          if (Array.isArray(next)) {
            log.error({ errors: next }, 'config reload refused; the running config stays');
            return undefined;
          }
          return server.reload(next);
        })
        .catch((err: unknown) => log.error({ err: (err as Error).message }, 'config reload failed'));
    });
  });
  return 0;
}

function announce(
  config: Config,
  file: string | undefined,
  log: ReturnType<typeof createLogger>,
  addresses: Record<string, { host: string; port: number }>,
): void {
  const h = displayHost(config.http);
  const r = displayHost(config.rtmp);
  const httpPort = addresses['http']?.port;
  const rtmpPort = addresses['rtmp']?.port;
  const rtspPort = addresses['rtsp']?.port;
  const urls: Record<string, string> = {};
  const demo = config.streams[0]?.name;
  if (demo && rtmpPort) urls['vlc_rtmp'] = `rtmp://${r}:${rtmpPort}/static/${demo}`;
  if (demo && rtspPort) urls['ffplay_rtsp'] = `rtsp://${displayHost(config.rtsp)}:${rtspPort}/${demo}`;
  if (demo && httpPort) {
    urls['browser_hls'] = `http://${h}:${httpPort}/${demo}/index.m3u8`;
    urls['vlc_http_ts'] = `http://${h}:${httpPort}/${demo}/mpegts`;
  }
  const template = config.templates[0];
  if (template && rtmpPort) {
    urls['obs_server'] = `rtmp://${r}:${rtmpPort}/${template.prefixes[0] ?? template.name}`;
    urls['obs_stream_key'] = 'cam1';
    urls['play_published'] = `rtmp://${r}:${rtmpPort}/${template.prefixes[0] ?? template.name}/cam1`;
  }
  // Says whether the built JavaScript or the TypeScript sources run (bin/streamgate.js decides).
  const runtime = import.meta.url.endsWith('.ts') ? 'sources' : 'compiled';
  log.info({ config: file ?? '<embedded>', runtime, listen: addresses, urls }, 'streamgate is running');
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'check-config') return checkConfig(argv.slice(1));
  if (argv[0] === 'token') return runTokenCli(argv.slice(1));
  return run(argv);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`streamgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
