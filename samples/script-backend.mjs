#!/usr/bin/env node
// An executable streamgate script backend (SPEC §5): the request arrives as JSON on stdin
// (the same fields as the HTTP backend's query, AUTH-SPEC §1.3); exit 0 allows, exit 1
// denies, any other exit or a time-out counts as "backend unavailable". On allow it prints
// a JSON object with the optional grant fields.
//
// This one accepts the tokens of samples/tokens.txt (or the file in STREAMGATE_TOKENS) and,
// like the HTTP sample, limits each user to one screen.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = process.env.STREAMGATE_TOKENS ?? fileURLToPath(new URL('./tokens.txt', import.meta.url));

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;

let req;
try {
  req = JSON.parse(input);
} catch {
  process.exit(2);
}

const tokens = new Map();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const l = line.trim();
  const i = l.indexOf(':');
  if (l.length > 3 && i > 0) tokens.set(l.slice(i + 1), l.slice(0, i));
}

const user = typeof req.token === 'string' ? tokens.get(req.token) : undefined;
if (user === undefined) {
  process.stdout.write(JSON.stringify({ auth_duration: 30 }));
  process.exit(1);
}
process.stdout.write(JSON.stringify({ user_id: user, max_sessions: 1, auth_duration: 180 }));
process.exit(0);
