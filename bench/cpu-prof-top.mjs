// Self time per function of a .cpuprofile (from bench/cpu-prof-hook.mjs or node --cpu-prof),
// the top N, as "ms  share  function  file:line", optionally only the samples between FROM and TO
// seconds after the profile started (the steady state, without start-up).
// Usage: node bench/cpu-prof-top.mjs FILE [N] [FROM] [TO]
import { readFileSync } from 'node:fs';

const [file, n = '25', from = '0', to = '1e9'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
const dt = profile.timeDeltas;
let t = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += dt[i] ?? 0;
  if (t < Number(from) * 1e6 || t > Number(to) * 1e6) continue;
  const node = byId.get(profile.samples[i]);
  const { functionName, url, lineNumber } = node.callFrame;
  const key = `${functionName || '(anonymous)'}  ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
console.log(`total ${(total / 1000).toFixed(0)} ms, busy ${((total - idle) / 1000).toFixed(0)} ms`);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) {
  console.log(
    `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${key}`,
  );
}
