// `--cpu-prof` for a process started with NODE_OPTIONS (where node refuses that flag): a preload
// that profiles the whole run and writes CPU_PROF_DIR/<pid>.cpuprofile (Chrome DevTools format)
// when the process exits. Usage: NODE_OPTIONS="--import ./bench/cpu-prof-hook.mjs" CPU_PROF_DIR=dir
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CPU_PROF_DIR ?? '.';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
process.on('exit', () => {
  // The main-thread session answers synchronously, so this completes inside the exit handler.
  session.post('Profiler.stop', (err, result) => {
    if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
});
