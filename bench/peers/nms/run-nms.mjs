// node-media-server on loopback for the RTMP fan-out bench, configured in code (bin/app.js would
// write secrets back into its own config file): RTMP and HTTP-FLV only, no auth, no web admin.
// Usage: node run-nms.mjs RTMP_PORT HTTP_PORT (from the directory node-media-server is installed in)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import NodeMediaServer from 'node-media-server';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nms-bench-'));
const nms = new NodeMediaServer(
  {
    bind: '127.0.0.1',
    rtmp: { port: Number(process.argv[2]) },
    http: { port: Number(process.argv[3]) },
    webadmin: { enable: false },
    notify: { url: '' },
    store: { path: dataDir },
    record: { auto: false, path: path.join(dataDir, 'record') },
    auth: { play: false, publish: false, secret: 'bench' },
  },
  path.join(dataDir, 'config.json'),
);
nms.run();
const stop = () => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
