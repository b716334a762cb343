#!/usr/bin/env node
// A minimal streamgate HTTP auth backend in plain Node, doing what the Flussonic PHP example
// does (AUTH-SPEC §2.5): tokens live in a text file of `user:token` lines (lines of 3
// characters or fewer are skipped); a missing or empty token gets 403, a known token gets 200
// with X-UserId and X-Max-Sessions: 1 (one screen per user), an unknown token gets 403.
// It answers on_play GETs and on_publish POSTs alike; the token is in the query of both.
//
// Usage: node samples/auth-backend.mjs [PORT=9000] [TOKENS_FILE=samples/tokens.txt]
// Prints `listening on http://127.0.0.1:PORT` once ready (PORT 0 picks a free port).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const port = Number(process.argv[2] ?? 9000);
const file = process.argv[3] ?? fileURLToPath(new URL('./tokens.txt', import.meta.url));
const host = process.env.AUTH_HOST ?? '127.0.0.1';

/** Re-read on every request, like the PHP script, so edits apply without a restart. */
function loadTokens() {
  const tokens = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const l = line.trim();
    if (l.length <= 3) continue;
    const i = l.indexOf(':');
    if (i <= 0) continue;
    tokens.set(l.slice(i + 1), l.slice(0, i));
  }
  return tokens;
}

const server = createServer((req, res) => {
  // Drain a publish body; the query already carries every field.
  req.resume();
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://backend');
    const token = url.searchParams.get('token');
    const log = {
      method: req.method,
      name: url.searchParams.get('name'),
      type: url.searchParams.get('request_type'),
    };
    if (!token) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('no token\n');
      console.log(JSON.stringify({ ...log, status: 403, why: 'no token' }));
      return;
    }
    let tokens;
    try {
      tokens = loadTokens();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('token file unreadable\n');
      console.error(`cannot read ${file}: ${err.message}`);
      return;
    }
    const user = tokens.get(token);
    if (user === undefined) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('unknown token\n');
      console.log(JSON.stringify({ ...log, status: 403, why: 'unknown token' }));
      return;
    }
    res.writeHead(200, { 'x-userid': user, 'x-max-sessions': '1', 'content-type': 'text/plain' }).end('ok\n');
    console.log(JSON.stringify({ ...log, status: 200, user }));
  });
});

server.listen(port, host, () => {
  const addr = server.address();
  console.log(`listening on http://${host}:${typeof addr === 'object' && addr ? addr.port : port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
