// Config parser: every directive, every error with its position, and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { formatConfigError, parseConfig } from '../../../src/config/parse.js';
import { DEFAULT_LIMITS } from '../../../src/core/limits.js';
import type { Config, ConfigError } from '../../../src/config/types.js';

const FILE = 'test.conf';
/** The directory relative `file://` inputs resolve against: FILE's, the working directory. */
const HERE = process.cwd();

function ok(text: string): Config {
  const r = parseConfig(text, FILE);
  if ('errors' in r) {
    assert.fail(`expected a valid config, got:\n${r.errors.map(formatConfigError).join('\n')}`);
  }
  return r.config;
}

function errs(text: string): ConfigError[] {
  const r = parseConfig(text, FILE);
  if (!('errors' in r)) assert.fail('expected errors, got a valid config');
  return r.errors;
}

function stream(c: Config, name: string) {
  const s = c.streams.find((x) => x.name === name);
  assert.ok(s, `stream ${name}`);
  return s;
}

// --- Valid directives ------------------------------------------------------------------

const valid: { name: string; text: string; check: (c: Config) => void }[] = [
  {
    name: 'dvr with depth and size, inherited from a template',
    text: 'template t { prefix live; input publish://; dvr /var/lib/sg 24h 10G; } stream a { template t; } stream b { input publish://; dvr rel/dir 90m; }',
    check: (c) => {
      assert.deepEqual(c.templates[0]?.dvr, {
        root: '/var/lib/sg',
        depthSec: 86_400,
        maxBytes: 10 * 2 ** 30,
      });
      assert.deepEqual(stream(c, 'b').dvr, { root: 'rel/dir', depthSec: 5400 });
    },
  },
  {
    name: 'listeners: port, host:port, [ipv6]:port',
    text: 'http 8080; rtmp 127.0.0.1:1935; rtsp [::1]:8554; mysql 3306; edit_auth a b;',
    check: (c) => {
      assert.deepEqual(c.http, { port: 8080 });
      assert.deepEqual(c.rtmp, { host: '127.0.0.1', port: 1935 });
      assert.deepEqual(c.rtsp, { host: '::1', port: 8554 });
      assert.deepEqual(c.mysql, { port: 3306 });
    },
  },
  {
    name: 'mysql without a port takes the default 14406 (AUTH-SPEC §9.2)',
    text: 'mysql; edit_auth a b;',
    check: (c) => assert.deepEqual(c.mysql, { port: 14406 }),
  },
  {
    name: 'no mysql directive, no SQL listener',
    text: 'http 8080;',
    check: (c) => assert.equal(c.mysql, undefined),
  },
  {
    name: 'hostname listener',
    text: 'http localhost:80;',
    check: (c) => assert.deepEqual(c.http, { host: 'localhost', port: 80 }),
  },
  { name: 'port 0 = any free port', text: 'http 0;', check: (c) => assert.deepEqual(c.http, { port: 0 }) },
  {
    name: 'edit_auth',
    text: 'edit_auth admin "pa ss";',
    check: (c) => assert.deepEqual(c.editAuth, { user: 'admin', password: 'pa ss' }),
  },
  {
    name: 'session_store and history',
    text: 'session_store redis://10.0.0.1:6379/2; history sqlite:///var/lib/sg.db;',
    check: (c) => {
      assert.equal(c.sessionStore, 'redis://10.0.0.1:6379/2');
      assert.equal(c.history, 'sqlite:///var/lib/sg.db');
    },
  },
  {
    name: 'flags',
    text: 'no_auto_token; admin_view_disabled;',
    check: (c) => {
      assert.equal(c.noAutoToken, true);
      assert.equal(c.adminViewDisabled, true);
    },
  },
  {
    name: 'defaults of an empty file',
    text: '',
    check: (c) => {
      assert.equal(c.history, 'sqlite://data/history.db');
      assert.equal(c.httpSessionTimeout, 60);
      assert.equal(c.defaultAuthDuration, 180);
      assert.deepEqual(c.trustedProxies, []);
      assert.equal(c.noAutoToken, false);
      assert.equal(c.adminViewDisabled, false);
      assert.equal(c.streams.length, 0);
      assert.equal(c.templates.length, 0);
      assert.equal(c.authBackends.size, 0);
      assert.equal(c.http, undefined);
      assert.equal(c.onPlay, undefined);
      assert.equal(c.source, FILE);
    },
  },
  {
    name: 'timeouts',
    text: 'http_session_timeout 30; default_auth_duration 2.5;',
    check: (c) => {
      assert.equal(c.httpSessionTimeout, 30);
      assert.equal(c.defaultAuthDuration, 2.5);
    },
  },
  {
    name: 'trusted_proxies, repeated lines append',
    text: 'trusted_proxies 10.0.0.1 192.168.0.0/16;\ntrusted_proxies ::1 fd00::/8;',
    check: (c) => assert.deepEqual(c.trustedProxies, ['10.0.0.1', '192.168.0.0/16', '::1', 'fd00::/8']),
  },
  {
    name: 'global on_play with every option',
    text:
      'on_play https://mw.example/auth session_keys=ip,ip,name,proto,query:sid max_sessions=5 ' +
      'soft_limitation=true domains=A.com,b.tv domains_strict=true timeout=1.5 bearer=tok ' +
      'allowed_countries=ru,US disallowed_countries=gb secret=xyz;',
    check: (c) => {
      const p = c.onPlay;
      assert.ok(p);
      assert.equal(p.url, 'https://mw.example/auth');
      assert.deepEqual(p.sessionKeys, ['ip', 'ip', 'name', 'proto', 'query:sid']);
      assert.equal(p.maxSessions, 5);
      assert.equal(p.softLimitation, true);
      assert.deepEqual(p.domains, ['a.com', 'b.tv']);
      assert.equal(p.domainsStrict, true);
      assert.equal(p.timeoutSec, 1.5);
      assert.equal(p.bearer, 'tok');
      assert.deepEqual(p.allowedCountries, ['RU', 'US']);
      assert.deepEqual(p.disallowedCountries, ['GB']);
      assert.deepEqual(p.extra, { secret: 'xyz' });
      assert.deepEqual(p.loc, { file: FILE, line: 1, col: 1 });
    },
  },
  {
    name: 'on_play option defaults',
    text: 'on_play http://x/a;',
    check: (c) => {
      const p = c.onPlay;
      assert.ok(p);
      assert.deepEqual(p.sessionKeys, ['name', 'ip', 'proto', 'token']);
      assert.equal(p.timeoutSec, 3);
      assert.equal(p.softLimitation, false);
      assert.equal(p.domainsStrict, false);
      assert.equal(p.maxSessions, undefined);
      assert.deepEqual(p.extra, {});
    },
  },
  {
    name: 'session_keys_query_bare turns unknown names into query keys (A6)',
    text: 'on_play http://x/a session_keys=ip,name,proto,sid session_keys_query_bare=true;',
    check: (c) => assert.deepEqual(c.onPlay?.sessionKeys, ['ip', 'name', 'proto', 'query:sid']),
  },
  {
    name: 'legacy global auth is on_play, marked legacy; global on_publish',
    text: 'auth http://mw/auth secret=xyz; on_publish ./hooks/publish.mjs;',
    check: (c) => {
      assert.equal(c.onPlay?.url, 'http://mw/auth');
      assert.equal(c.onPlay?.legacyAuth, true);
      assert.deepEqual(c.onPlay?.extra, { secret: 'xyz' });
      assert.equal(c.onPublish?.url, './hooks/publish.mjs');
    },
  },
  {
    name: 'every kind of on_play value',
    text: [
      'auth_backend b { backend http://a/x; }',
      'stream s1 { input fake://fake; on_play http://h:9/p; }',
      'stream s2 { input fake://fake; on_play /usr/local/bin/auth.sh; }',
      'stream s3 { input fake://fake; on_play auth.js; }',
      'stream s4 { input fake://fake; on_play auth://b; }',
      'stream s5 { input fake://fake; on_play jwt://?secret=S; }',
      'stream s6 { input fake://fake; on_play ks://123?secret=a,b; }',
      'stream s7 { input fake://fake; on_play securetoken://KEY?no_check_ip=true; }',
      'stream s8 { input fake://fake; on_play true; }',
      'stream s9 { input fake://fake; on_play ../x/auth.mjs; }',
    ].join('\n'),
    check: (c) =>
      assert.deepEqual(
        c.streams.map((s) => s.onPlay?.url),
        [
          'http://h:9/p',
          '/usr/local/bin/auth.sh',
          'auth.js',
          'auth://b',
          'jwt://?secret=S',
          'ks://123?secret=a,b',
          'securetoken://KEY?no_check_ip=true',
          'true',
          '../x/auth.mjs',
        ],
      ),
  },
  {
    name: 'auth_backend with every rule kind (AUTH-SPEC §6.1)',
    text: `auth_backend myauth1 {
  allow ip 127.0.0.1;
  allow ip 172.16/24;
  deny ip 8.8.8.8 2001:db8::/32;
  allow country RU us;
  deny country GB;
  allow token test_token1;
  deny ua "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.2.10)" MAG;
  backend http://stalker-1.iptv.net/auth.php;
  backend http://stalker-2.iptv.net/auth.php timeout=1;
  allow default;
}`,
    check: (c) => {
      const b = c.authBackends.get('myauth1');
      assert.ok(b);
      assert.equal(b.allowDefault, true);
      assert.deepEqual(
        b.rules.map((r) => [r.action, r.kind, r.values]),
        [
          ['allow', 'ip', ['127.0.0.1']],
          ['allow', 'ip', ['172.16.0.0/24']],
          ['deny', 'ip', ['8.8.8.8', '2001:db8::/32']],
          ['allow', 'country', ['RU', 'US']],
          ['deny', 'country', ['GB']],
          ['allow', 'token', ['test_token1']],
          ['deny', 'ua', ['Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.2.10)', 'MAG']],
        ],
      );
      assert.deepEqual(
        b.backends.map((x) => [x.url, x.timeoutSec]),
        [
          ['http://stalker-1.iptv.net/auth.php', 3],
          ['http://stalker-2.iptv.net/auth.php', 1],
        ],
      );
      assert.equal(b.rules[0]?.loc.line, 2);
    },
  },
  {
    name: 'auth_backend without allow default denies by default',
    text: 'auth_backend x { allow ip ::1; }',
    check: (c) => assert.equal(c.authBackends.get('x')?.allowDefault, false),
  },
  {
    name: 'template with everything',
    text: `template live {
  prefix live cams/hd;
  input publish://;
  password s3cret;
  on_publish http://127.0.0.1:9000/on_publish;
  on_play http://127.0.0.1:9000/on_play session_keys=ip,name,proto,token max_sessions=5 soft_limitation=true domains=a.com,b.com;
  segment_duration 0.5;
  protocols { hls false; rtmp true; whitelist true; dash false; }
  playback_headers { protocols hls tshttp; playback live; header Access-Control-Allow-Origin example.com; header Cache-Control no-cache, no-store; }
}`,
    check: (c) => {
      const t = c.templates[0];
      assert.ok(t);
      assert.equal(t.kind, 'template');
      assert.deepEqual(t.prefixes, ['live', 'cams/hd']);
      assert.deepEqual(t.inputs, ['publish://']);
      assert.equal(t.password, 's3cret');
      assert.equal(t.onPublish?.url, 'http://127.0.0.1:9000/on_publish');
      assert.equal(t.onPlay?.maxSessions, 5);
      assert.equal(t.segmentDuration, 0.5);
      assert.deepEqual(t.protocols, { whitelist: true, flags: { hls: false, rtmp: true, dash: false } });
      assert.deepEqual(t.playbackHeaders, {
        protocols: ['hls', 'tshttp'],
        playback: ['live'],
        headers: [
          ['Access-Control-Allow-Origin', 'example.com'],
          ['Cache-Control', 'no-cache, no-store'],
        ],
      });
    },
  },
  {
    name: 'prefix "" serves any name',
    text: 'template any { prefix ""; input publish://; }',
    check: (c) => assert.deepEqual(c.templates[0]?.prefixes, ['']),
  },
  {
    name: 'stream with several inputs, legacy url keyword, template',
    text: 'template t { input publish://; }\nstream a/b.c_d-e { input fake://fake; url file://vod/bunny.mp4; template t; }',
    check: (c) => {
      const s = stream(c, 'a/b.c_d-e');
      assert.deepEqual(s.inputs, ['fake://fake', `file://${HERE}/vod/bunny.mp4`]);
      assert.equal(s.template, 't');
      assert.equal(s.kind, 'stream');
    },
  },
  {
    name: 'every input scheme',
    text: [
      'publish://',
      'fake://fake',
      'file://vod/x.mp4',
      'rtmp://h/app/s',
      'rtsp://h/p',
      'udp://239.0.0.1:1234',
      'tshttp://h:9000/c',
      'http://h/x.ts',
      'https://h/x.ts',
      'hls://h/index.m3u8',
      'srt://h:9000',
    ]
      .map((u, i) => `stream s${i} { input ${u}; }`)
      .join('\n'),
    check: (c) => assert.equal(c.streams.length, 11),
  },
  {
    name: 'one-line legacy stream',
    text: 'stream ort tshttp://10.0.4.5:9000/channel/5;',
    check: (c) => assert.deepEqual(stream(c, 'ort').inputs, ['tshttp://10.0.4.5:9000/channel/5']),
  },
  {
    name: 'legacy auth inside a stream',
    text: 'auth_backend b { allow default; }\nstream s { input fake://fake; auth auth://b; }',
    check: (c) => {
      assert.equal(stream(c, 's').onPlay?.url, 'auth://b');
      assert.equal(stream(c, 's').onPlay?.legacyAuth, true);
    },
  },
  {
    name: 'references may point forward',
    text: 'stream s { template t; on_play auth://later; }\ntemplate t { input publish://; }\nauth_backend later { allow default; }',
    check: (c) => assert.equal(stream(c, 's').template, 't'),
  },
  {
    name: 'quoted strings: escapes, spaces, specials, and joined with a key',
    text: 'auth_backend q { deny ua "a \\"quoted\\" \\\\ ua; {x} # not a comment"; }\non_play http://x/a bearer="two words";',
    check: (c) => {
      assert.deepEqual(c.authBackends.get('q')?.rules[0]?.values, ['a "quoted" \\ ua; {x} # not a comment']);
      assert.equal(c.onPlay?.bearer, 'two words');
    },
  },
  {
    name: 'comments everywhere',
    text: `# header
http 8080; # trailing
# between
stream # after keyword
  demo # after name
  { # after brace
  input # after directive
  fake://fake # before semicolon
  ; # after semicolon
} # after block
stream b { input http://h/x.ts#1; }
# last line without newline`,
    check: (c) => {
      assert.deepEqual(stream(c, 'demo').inputs, ['fake://fake']);
      // `#` inside a word is not a comment.
      assert.deepEqual(stream(c, 'b').inputs, ['http://h/x.ts#1']);
    },
  },
  {
    name: 'no whitespace around punctuation, `};`, `;;`',
    text: 'http 1;;stream a{input fake://fake;};stream b{input fake://fake;}',
    check: (c) => assert.equal(c.streams.length, 2),
  },
  {
    name: 'CRLF line endings and tabs',
    text: 'http\t8080;\r\n\tstream\tdemo\t{\r\n\t\tinput\tfake://fake;\r\n}\r\n',
    check: (c) => {
      assert.equal(c.http?.port, 8080);
      assert.deepEqual(stream(c, 'demo').loc, { file: FILE, line: 2, col: 2 });
    },
  },
  {
    name: 'UTF-8 BOM',
    text: '\uFEFFhttp 8080;',
    check: (c) => assert.equal(c.http?.port, 8080),
  },
  {
    name: 'whitespace and comments only',
    text: '\n  # nothing\n\t\n',
    check: (c) => assert.equal(c.streams.length, 0),
  },
  {
    name: 'a statement may wrap onto the next line',
    text: 'on_play http://x/a\n  session_keys=ip,name,proto\n  max_sessions=2;',
    check: (c) => assert.equal(c.onPlay?.maxSessions, 2),
  },
];

for (const v of valid) {
  test(`valid: ${v.name}`, () => v.check(ok(v.text)));
}

// --- Errors with exact positions ----------------------------------------------------

type Expected = [line: number, col: number, message: RegExp];

const invalid: { name: string; text: string; errors: Expected[] }[] = [
  {
    name: 'dvr limit that is neither a depth nor a size',
    text: 'stream a { input publish://; dvr /d 24x; }',
    errors: [[1, 34, /dvr limit '24x' is neither a depth/]],
  },
  {
    name: 'dvr with two depths',
    text: 'stream a { input publish://; dvr /d 1h 2h; }',
    errors: [[1, 34, /given twice/]],
  },
  // Syntax
  { name: 'missing ; at EOF', text: 'http 8080', errors: [[1, 10, /missing ';' after '8080'/]] },
  {
    name: 'mysql without edit_auth',
    text: 'http 8080;\nmysql 3306;',
    errors: [[2, 1, /'mysql' needs 'edit_auth/]],
  },
  {
    name: 'missing ; before the next directive',
    text: 'http 8080\nrtmp 1935;',
    errors: [[1, 10, /missing ';'/]],
  },
  {
    name: 'missing ; before }',
    text: 'stream a { input fake://fake }',
    errors: [[1, 29, /missing ';' after 'fake:\/\/fake'/]],
  },
  {
    name: 'missing ; inside a block before the next line',
    text: 'stream a {\n  input fake://fake\n  on_play true;\n}',
    errors: [[2, 20, /missing ';'/]],
  },
  {
    name: 'unterminated block',
    text: 'stream a {\n  input fake://fake;\n',
    errors: [[1, 10, /unterminated block/]],
  },
  {
    name: 'unterminated block followed by another stream',
    text: 'stream a {\n  input fake://fake;\nstream b { input fake://fake; }',
    errors: [[1, 10, /unterminated block: '\{' of 'stream'/]],
  },
  { name: 'stray }', text: 'http 1;\n}\n', errors: [[2, 1, /unexpected '\}'/]] },
  { name: 'stray {', text: '{ http 1; }', errors: [[1, 1, /unexpected '\{'/]] },
  {
    name: 'unterminated string',
    text: 'auth_backend a { deny ua "Mozilla 5.0; }\n}\nhttp 1;',
    errors: [[1, 26, /unterminated string/]],
  },
  // Directives
  {
    name: 'unknown directive with suggestion',
    text: 'strem a { }',
    errors: [[1, 1, /unknown directive 'strem'; did you mean 'stream'\?/]],
  },
  {
    name: 'transposed letters suggestion',
    text: 'stream a { inptu fake://fake; input fake://fake; }',
    errors: [[1, 12, /did you mean 'input'/]],
  },
  {
    name: 'unknown directive without suggestion',
    text: 'foo 1;',
    errors: [[1, 1, /^unknown directive 'foo'$/]],
  },
  {
    name: 'directive in the wrong place',
    text: 'input fake://fake;\nstream a { input fake://fake; prefix x; http 80; }',
    errors: [
      [1, 1, /'input' is not allowed at the top level \(only inside a stream or inside a template\)/],
      [2, 31, /'prefix' is not allowed inside a stream \(only inside a template\)/],
      [2, 41, /'http' is not allowed inside a stream/],
    ],
  },
  {
    name: 'template inside a template',
    text: 'template t { template u; }',
    errors: [[1, 14, /'template' is not allowed inside a template/]],
  },
  { name: 'quoted directive name', text: '"http" 80;', errors: [[1, 1, /quoted string/]] },
  // Arity
  { name: 'too few arguments', text: 'http;', errors: [[1, 1, /'http' needs 1 argument/]] },
  { name: 'too many arguments', text: 'http 80 81;', errors: [[1, 9, /'http' takes 1 argument, got 2/]] },
  { name: 'flag with argument', text: 'no_auto_token yes;', errors: [[1, 15, /takes no arguments/]] },
  { name: 'edit_auth arity', text: 'edit_auth admin;', errors: [[1, 1, /needs 2 arguments/]] },
  { name: 'input arity', text: 'stream a { input; }', errors: [[1, 12, /'input' needs 1 argument/]] },
  { name: 'block on a simple directive', text: 'http 80 { }', errors: [[1, 9, /does not take a block/]] },
  { name: 'template without block', text: 'template t;', errors: [[1, 1, /needs a block/]] },
  {
    name: 'stream without block or url',
    text: 'stream a;',
    errors: [[1, 1, /needs a block \{ … \} or an input URL/]],
  },
  {
    name: 'protocols without block',
    text: 'stream a { input fake://fake; protocols hls; }',
    errors: [[1, 31, /needs a block/]],
  },
  // Ports and addresses
  { name: 'port too big', text: 'http 70000;', errors: [[1, 6, /bad port '70000'/]] },
  { name: 'port not a number', text: 'rtmp abc;', errors: [[1, 6, /bad port 'abc'/]] },
  { name: 'host:port bad port', text: 'rtsp 0.0.0.0:x;', errors: [[1, 6, /bad port 'x'/]] },
  { name: 'ipv6 without brackets', text: 'http ::1:8080;', errors: [[1, 6, /need brackets/]] },
  { name: 'bad ipv6 in brackets', text: 'http [zz]:8080;', errors: [[1, 6, /bad IPv6/]] },
  {
    name: 'duplicate listener',
    text: 'http 1;\nhttp 2;',
    errors: [[2, 1, /duplicate 'http' \(already set at 1:1\)/]],
  },
  {
    name: 'bad trusted proxy',
    text: 'trusted_proxies 10.0.0.1 10.0.0.0/33 nope;',
    errors: [
      [1, 26, /bad IP/],
      [1, 38, /bad IP/],
    ],
  },
  {
    name: 'bad rule ip',
    text: 'auth_backend a { allow ip 300.1.1.1; }',
    errors: [[1, 27, /bad IP address or CIDR '300.1.1.1'/]],
  },
  // Global values
  { name: 'session_store not redis', text: 'session_store memcached://x;', errors: [[1, 15, /redis:\/\//]] },
  { name: 'history not sqlite', text: 'history data/h.db;', errors: [[1, 9, /sqlite:\/\/PATH/]] },
  { name: 'bad http_session_timeout', text: 'http_session_timeout 0;', errors: [[1, 22, /positive number/]] },
  {
    name: 'bad default_auth_duration',
    text: 'default_auth_duration soon;',
    errors: [[1, 23, /positive number/]],
  },
  // Stream names
  {
    name: 'reserved first segments',
    text: ['api', 'admin', 'metrics', 'health', 'static/x']
      .map((n) => `stream ${n} { input fake://fake; }`)
      .join('\n'),
    errors: [
      [1, 8, /bad stream name 'api': it may not start with 'api' \(reserved\)/],
      [2, 8, /reserved/],
      [3, 8, /reserved/],
      [4, 8, /reserved/],
      [5, 8, /'static' \(reserved\)/],
    ],
  },
  {
    name: 'bad characters and segments',
    text: 'stream a$b fake://fake;\nstream /a fake://fake;\nstream a//b fake://fake;\nstream a/ fake://fake;\nstream a/../b fake://fake;\nstream "a b" fake://fake;',
    errors: [
      [1, 8, /may only contain/],
      [2, 8, /empty segment/],
      [3, 8, /empty segment/],
      [4, 8, /empty segment/],
      [5, 8, /'\.' or '\.\.'/],
      [6, 8, /may only contain/],
    ],
  },
  {
    name: 'reserved prefix',
    text: 'template t { prefix admin; input publish://; }',
    errors: [[1, 21, /bad prefix 'admin'.*reserved/]],
  },
  {
    name: 'duplicate stream',
    text: 'stream a { input fake://fake; }\nstream a fake://fake;',
    errors: [[2, 8, /duplicate stream 'a' \(first defined at 1:1\)/]],
  },
  {
    name: 'duplicate template and auth_backend',
    text: 'template t { }\ntemplate t { }\nauth_backend b { }\nauth_backend b { }',
    errors: [
      [2, 10, /duplicate template 't'/],
      [4, 14, /duplicate auth_backend 'b'/],
    ],
  },
  {
    name: 'same prefix on two templates',
    text: 'template a { prefix live; }\ntemplate b { prefix live; }',
    errors: [[2, 10, /prefix 'live' of template 'b' is already used by template 'a'/]],
  },
  { name: 'stream without input', text: 'stream a { on_play true; }', errors: [[1, 8, /has no input/]] },
  {
    name: 'stream whose template has no input either',
    text: 'template t { prefix x; }\nstream a { template t; }',
    errors: [[2, 8, /neither it nor template 't'/]],
  },
  // References
  {
    name: 'unknown template',
    text: 'template live { }\nstream a { template liv; }',
    errors: [[2, 21, /unknown template 'liv'; did you mean 'live'\?/]],
  },
  {
    name: 'unknown auth backend',
    text: 'auth_backend mw { }\nstream a { input fake://fake; on_play auth://mx; }',
    errors: [[2, 39, /unknown auth_backend 'mx' in 'auth:\/\/mx'; did you mean 'mw'\?/]],
  },
  {
    name: 'auth:// without a name',
    text: 'on_play auth://;',
    errors: [[1, 9, /bad auth_backend reference/]],
  },
  // on_play values and options
  {
    name: 'unknown on_play scheme',
    text: 'on_play ftp://x/a;',
    errors: [[1, 9, /unknown 'on_play' scheme 'ftp:\/\/'/]],
  },
  { name: 'on_play bare word', text: 'on_play allow;', errors: [[1, 9, /unknown 'on_play' 'allow'/]] },
  { name: 'bad http url', text: 'on_play http://[bad/a;', errors: [[1, 9, /bad URL/]] },
  {
    name: 'AUTH-SPEC §12 item 11: session_keys=name,proto rejected',
    text: 'on_play http://x/a session_keys=name,proto;',
    errors: [[1, 20, /session_keys must include ip, name and proto \(missing ip\)/]],
  },
  {
    name: 'session_keys without name rejected',
    text: 'on_play http://x/a session_keys=ip,proto,token;',
    errors: [[1, 20, /session_keys must include ip, name and proto \(missing name\)/]],
  },
  {
    name: 'session_keys without proto rejected',
    text: 'stream s { input fake://fake; on_play http://x/a session_keys=ip,name; }',
    errors: [[1, 50, /session_keys must include ip, name and proto \(missing proto\)/]],
  },
  {
    name: 'session_keys missing several',
    text: 'on_play http://x/a session_keys=token;',
    errors: [[1, 20, /missing ip, name, proto/]],
  },
  {
    name: 'session_keys unknown key',
    text: 'on_play http://x/a session_keys=ip,name,proto,cookie;',
    errors: [[1, 20, /unknown session key 'cookie'/]],
  },
  {
    name: 'session_keys with spaces',
    text: 'on_play http://x/a session_keys=ip, name,proto;',
    errors: [
      [1, 20, /empty element/],
      [1, 37, /expected an option key=value after the URL, got 'name,proto'/],
    ],
  },
  {
    name: 'session_keys query: without a name',
    text: 'on_play http://x/a session_keys=ip,name,proto,query:;',
    errors: [[1, 20, /unknown session key 'query:'/]],
  },
  {
    name: 'max_sessions not a positive integer',
    text: 'on_play http://x/a max_sessions=0;\non_publish http://x/b max_sessions=1.5;\nauth_backend q { backend http://x/c max_sessions=-2; }',
    errors: [
      [1, 20, /max_sessions must be a positive integer, got '0'/],
      [2, 23, /got '1\.5'/],
      [3, 37, /got '-2'/],
    ],
  },
  {
    name: 'timeout not a positive number',
    text: 'on_play http://x/a timeout=0;\non_publish http://x/a timeout=abc;',
    errors: [
      [1, 20, /timeout must be a positive number/],
      [2, 23, /got 'abc'/],
    ],
  },
  {
    name: 'boolean option',
    text: 'on_play http://x/a soft_limitation=yes;',
    errors: [[1, 20, /soft_limitation must be true or false/]],
  },
  {
    name: 'duplicate option',
    text: 'on_play http://x/a timeout=1 timeout=2;',
    errors: [[1, 30, /duplicate option 'timeout'/]],
  },
  { name: 'empty domain', text: 'on_play http://x/a domains=a.com,;', errors: [[1, 20, /empty element/]] },
  {
    name: 'bad country option',
    text: 'on_play http://x/a allowed_countries=USA;',
    errors: [[1, 20, /bad country code 'USA'/]],
  },
  {
    name: 'auth and on_play together; duplicate on_play',
    text: 'stream a { input fake://fake; on_play true; auth true; }\nstream b { input fake://fake; on_play true; on_play true; }',
    errors: [
      [1, 45, /'auth' and 'on_play' cannot both be set/],
      [2, 45, /duplicate 'on_play'/],
    ],
  },
  // Inputs
  {
    name: 'unknown input scheme',
    text: 'stream a { input rtnp://h/x; }',
    errors: [[1, 18, /unknown input scheme 'rtnp:\/\/'; did you mean 'rtmp:\/\/'\?/]],
  },
  {
    name: 'input without scheme',
    text: 'stream a { input vod/bunny.mp4; }',
    errors: [[1, 18, /bad input URL/]],
  },
  {
    name: 'input with nothing after scheme',
    text: 'stream a { input file://; }',
    errors: [[1, 18, /nothing after/]],
  },
  {
    name: 'legacy one-line bad scheme',
    text: 'stream a gopher://x;',
    errors: [[1, 10, /unknown input scheme 'gopher:\/\/'/]],
  },
  // auth_backend
  {
    name: 'auth_backend rule problems',
    text: `auth_backend a {
  allow cookie x;
  deny default;
  allow ip;
  allow country USA;
  backend auth://a;
  backend jwt://?secret=x;
  allow default;
  allow default;
  frobnicate;
}`,
    errors: [
      [2, 9, /unknown rule kind 'cookie'/],
      [3, 8, /'deny default' is implied/],
      [4, 3, /'allow' needs at least 2 arguments/],
      [5, 17, /bad country code 'USA'/],
      [6, 11, /unknown backend scheme 'auth:\/\/'/],
      [7, 11, /unknown backend scheme 'jwt:\/\/'/],
      [9, 3, /duplicate 'allow default'/],
      [10, 3, /unknown directive 'frobnicate'/],
    ],
  },
  { name: 'auth_backend without block', text: 'auth_backend a;', errors: [[1, 1, /needs a block/]] },
  { name: 'bad auth_backend name', text: 'auth_backend a/b { }', errors: [[1, 14, /bad auth_backend name/]] },
  // Stream body
  {
    name: 'protocols problems',
    text: 'stream a { input fake://fake; protocols { hls maybe; ftp true; rtmp false; rtmp true; } }',
    errors: [
      [1, 47, /hls must be true or false/],
      [1, 54, /unknown directive 'ftp'/],
      [1, 76, /duplicate 'rtmp'/],
    ],
  },
  {
    name: 'playback_headers problems',
    text: 'stream a { input fake://fake; playback_headers { header X; header "Bad Name" v; protocols gopher; cors on; } }',
    errors: [
      [1, 50, /'header' needs at least 2 arguments/],
      [1, 67, /bad HTTP header name/],
      [1, 91, /unknown protocol 'gopher'/],
      [1, 99, /unknown directive 'cors'/],
    ],
  },
  {
    name: 'segment_duration',
    text: 'stream a { input fake://fake; segment_duration 0; }\nstream b { input fake://fake; segment_duration x; }',
    errors: [
      [1, 48, /segment_duration must be a positive number/],
      [2, 48, /got 'x'/],
    ],
  },
  {
    name: 'empty password (anyone sending ?password= would publish)',
    text: 'template t { password ""; }',
    errors: [[1, 23, /password must not be empty/]],
  },
  {
    name: 'duplicate password',
    text: 'template t { password a; password b; }',
    errors: [[1, 26, /duplicate 'password'/]],
  },
  // Positions with CRLF, tabs, BOM, and non-ASCII
  { name: 'CRLF positions', text: 'http 1;\r\nfoo;\r\n', errors: [[2, 1, /unknown directive 'foo'/]] },
  { name: 'tab counts as one column', text: '\tfoo;', errors: [[1, 2, /unknown directive/]] },
  { name: 'BOM is not a column', text: '\uFEFFfoo;', errors: [[1, 1, /unknown directive/]] },
  {
    name: 'astral characters are one column',
    text: 'stream 😀 fake://fake; foo;',
    errors: [
      [1, 8, /bad stream name/],
      [1, 23, /unknown directive/],
    ],
  },
  { name: 'lone CR line breaks', text: 'http 1;\rfoo;', errors: [[2, 1, /unknown directive/]] },
];

for (const c of invalid) {
  test(`error: ${c.name}`, () => {
    const got = errs(c.text);
    const shown = got.map(formatConfigError).join('\n');
    assert.equal(got.length, c.errors.length, `wrong number of errors:\n${shown}`);
    c.errors.forEach(([line, col, re], i) => {
      const e = got[i] as ConfigError;
      assert.equal(e.file, FILE);
      assert.deepEqual([e.line, e.col], [line, col], `position of error ${i}:\n${shown}`);
      assert.match(e.message, re, shown);
    });
  });
}

// --- Collected errors, formatting ----------------------------------------------------

test('collects errors from the whole file, sorted by position', () => {
  const got = errs('foo;\nhttp 99999;\nstream api fake://fake;\non_play http://x session_keys=name;\n');
  assert.deepEqual(
    got.map((e) => [e.line, e.col]),
    [
      [1, 1],
      [2, 6],
      [3, 8],
      [4, 18],
    ],
  );
});

test('formatConfigError is FILE:LINE:COL: message', () => {
  assert.equal(formatConfigError({ file: 'a.conf', line: 3, col: 7, message: 'boom' }), 'a.conf:3:7: boom');
});

test('errors are capped so garbage does not flood the terminal', () => {
  const got = errs('x;\n'.repeat(500));
  assert.equal(got.length, 101);
  assert.match(got[100]?.message ?? '', /too many errors; 400 more not shown/);
});

// --- AUTH-SPEC §12 item 12 -----------------------------------------------------------

test('AUTH-SPEC §12 item 12: duplicate session keys are kept in order', () => {
  const c = ok(
    'stream a { input fake://fake; on_play http://x/a session_keys=ip,ip,name,proto; }\n' +
      'stream b { input fake://fake; on_play http://x/a session_keys=proto,name,ip,ip; }\n' +
      'stream c { input fake://fake; on_play http://x/a session_keys=ip,name,proto; }',
  );
  assert.deepEqual(stream(c, 'a').onPlay?.sessionKeys, ['ip', 'ip', 'name', 'proto']);
  assert.deepEqual(stream(c, 'b').onPlay?.sessionKeys, ['proto', 'name', 'ip', 'ip']);
  assert.deepEqual(stream(c, 'c').onPlay?.sessionKeys, ['ip', 'name', 'proto']);
});

// --- Files ---------------------------------------------------------------------------

test('the SPEC §2 example parses completely', async () => {
  const path = new URL('../../fixtures/config/spec-example.conf', import.meta.url);
  const c = ok(await readFile(path, 'utf8'));
  assert.deepEqual(c.http, { port: 8080 });
  assert.deepEqual(c.rtmp, { port: 1935 });
  assert.deepEqual(c.rtsp, { port: 8554 });
  assert.deepEqual(c.editAuth, { user: 'admin', password: 's3cret' });
  assert.equal(c.sessionStore, 'redis://127.0.0.1:6379');
  assert.equal(c.history, 'sqlite://data/history.db');
  assert.equal(c.noAutoToken, true);
  assert.equal(c.onPlay?.url, 'http://127.0.0.1:9000/auth');
  const mw = c.authBackends.get('mw');
  assert.ok(mw);
  assert.deepEqual(
    mw.rules.map((r) => [r.action, r.kind, r.values]),
    [
      ['allow', 'ip', ['10.0.0.0/8']],
      ['deny', 'token', ['leaked']],
    ],
  );
  assert.deepEqual(
    mw.backends.map((b) => b.url),
    ['http://mw/auth'],
  );
  assert.equal(mw.allowDefault, true);
  const live = c.templates[0];
  assert.ok(live);
  assert.equal(live.name, 'live');
  assert.deepEqual(live.prefixes, ['live']);
  assert.deepEqual(live.inputs, ['publish://']);
  assert.equal(live.password, 's3cret');
  assert.equal(live.onPublish?.url, 'http://127.0.0.1:9000/on_publish');
  assert.equal(live.onPlay?.url, 'http://127.0.0.1:9000/on_play');
  assert.deepEqual(live.onPlay?.sessionKeys, ['ip', 'name', 'proto', 'token']);
  assert.equal(live.onPlay?.maxSessions, 3);
  assert.deepEqual(live.onPlay?.domains, ['example.com']);
  assert.deepEqual(
    c.streams.map((s) => [s.name, s.inputs, s.onPlay?.url]),
    [
      ['demo', ['fake://fake'], undefined],
      ['movie', [`file://${HERE}/vod/bunny.mp4`], 'auth://mw'],
    ],
  );
});

// --- Hostile input -------------------------------------------------------------------

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

test('random bytes never throw, only return errors or a config', () => {
  const next = lcg(42);
  const alphabet = 'stream template auth_backend on_play input { } ; " \\ # \n\r\t=,/:[]';
  for (let round = 0; round < 400; round++) {
    const len = next() % 400;
    let text = '';
    for (let i = 0; i < len; i++) {
      const r = next();
      // Mix raw code units (including lone surrogates and NUL) with syntax characters.
      text += r % 3 === 0 ? String.fromCharCode(r % 0x10000) : alphabet[r % alphabet.length];
    }
    const r = parseConfig(text, 'fuzz.conf');
    if ('errors' in r) {
      assert.ok(r.errors.length > 0);
      for (const e of r.errors) {
        assert.ok(e.line >= 1 && e.col >= 1, formatConfigError(e));
        assert.equal(typeof e.message, 'string');
      }
    }
  }
});

test('random bytes decoded as UTF-8 never throw', () => {
  const next = lcg(7);
  for (let round = 0; round < 200; round++) {
    const bytes = Buffer.alloc(next() % 300);
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
    assert.doesNotThrow(() => parseConfig(bytes.toString('utf8'), 'fuzz.conf'));
  }
});

test('deeply nested braces do not overflow', () => {
  assert.doesNotThrow(() => parseConfig('{'.repeat(100000) + '}'.repeat(100000), 'deep.conf'));
  assert.doesNotThrow(() => parseConfig('stream a {'.repeat(100000), 'deep.conf'));
});

test('limits block: overrides named limits, keeps the defaults of the rest, refuses unknown names and bad values', () => {
  const r = parseConfig('limits { max_connections 500; handshake_timeout 2.5; }', 'l.conf');
  assert.ok('config' in r);
  assert.equal(r.config.limits.max_connections, 500);
  assert.equal(r.config.limits.handshake_timeout, 2.5);
  assert.equal(r.config.limits.max_connections_per_ip, DEFAULT_LIMITS.max_connections_per_ip);
  assert.equal(ok('http 8080;').limits, DEFAULT_LIMITS);

  const bad = parseConfig(
    'limits {\n  max_conections 5;\n  max_connections 1.5;\n  rtmp_max_message_bytes -1;\n  max_connections 2;\n  max_connections 3;\n}',
    'b.conf',
  );
  assert.ok('errors' in bad);
  assert.deepEqual(
    bad.errors.map((e) => `${e.line}:${e.col}: ${e.message}`),
    [
      "2:3: unknown directive 'max_conections'; did you mean 'max_connections'?",
      "3:19: 'max_connections' must be a positive whole number (count), got '1.5'",
      "4:26: 'rtmp_max_message_bytes' must be a positive whole number (bytes), got '-1'",
      "6:3: duplicate 'max_connections' (already set at 5:3)",
    ],
  );
});

test('metrics_public: off by default, a flag without arguments, once', () => {
  assert.equal(ok('http 8080;').metricsPublic, false);
  assert.equal(ok('metrics_public;').metricsPublic, true);
  assert.deepEqual(
    errs(
      'metrics_public yes;\nmetrics_public;\nmetrics_public;\nstream s { metrics_public; input fake://fake; }',
    ).map((e) => `${e.line}:${e.col}: ${e.message}`),
    [
      "1:16: 'metrics_public' takes no arguments, got 1 (usage: metrics_public)",
      "3:1: duplicate 'metrics_public' (already set at 2:1)",
      "4:12: 'metrics_public' is not allowed inside a stream (only at the top level)",
    ],
  );
});

test('file_root: file:// inputs must lie under a root; the default root is the config file directory', () => {
  const inDir = (text: string, file: string) => parseConfig(text, file);
  // Default: the directory of the config file, and relative inputs resolve against it.
  const d = inDir('stream m { input file://vod/a.mp4; }', '/etc/sg/streamgate.conf');
  assert.ok('config' in d);
  assert.deepEqual(d.config.files, { roots: ['/etc/sg'], base: '/etc/sg' });
  assert.deepEqual(d.config.streams[0]?.inputs, ['file:///etc/sg/vod/a.mp4']);
  assert.deepEqual(ok('http 8080;').files, { roots: [HERE], base: HERE });

  const outside = inDir(
    'stream a { input file:///etc/passwd; }\nstream b { input file://../x.mp4; }\nstream c file://vod/../../y.mp4;\nstream d { input file:///etc/sg-evil/z.mp4; }',
    '/etc/sg/streamgate.conf',
  );
  assert.ok('errors' in outside);
  assert.deepEqual(
    outside.errors.map((e) => `${e.line}:${e.col}: ${e.message}`),
    [
      "1:18: input 'file:///etc/passwd' is outside the file roots (/etc/sg); add a 'file_root' for it",
      "2:18: input 'file://../x.mp4' is outside the file roots (/etc/sg); add a 'file_root' for it",
      "3:10: input 'file://vod/../../y.mp4' is outside the file roots (/etc/sg); add a 'file_root' for it",
      "4:18: input 'file:///etc/sg-evil/z.mp4' is outside the file roots (/etc/sg); add a 'file_root' for it",
    ],
  );

  // Roots replace the default, may be relative (to the config directory), and may come after their use.
  const r = inDir(
    'stream a { input file:///srv/vod/a.mp4; }\nstream b { input file://media/b.mp4; }\nfile_root /srv/vod;\nfile_root media;',
    '/etc/sg/streamgate.conf',
  );
  assert.ok('config' in r, JSON.stringify('errors' in r ? r.errors : []));
  assert.deepEqual(r.config.files.roots, ['/srv/vod', '/etc/sg/media']);
  assert.deepEqual(
    r.config.streams.map((s) => s.inputs[0]),
    ['file:///srv/vod/a.mp4', 'file:///etc/sg/media/b.mp4'],
  );
  const notDefault = inDir(
    'file_root /srv/vod;\nstream a { input file://a.mp4; }',
    '/etc/sg/streamgate.conf',
  );
  assert.ok('errors' in notDefault, 'a file_root replaces the default root');
  assert.match(notDefault.errors[0]?.message ?? '', /outside the file roots \(\/srv\/vod\)/);

  assert.deepEqual(
    errs(
      'file_root;\nfile_root a b;\nfile_root "";\nfile_root /x { }\nstream s { file_root /y; input fake://fake; }',
    ).map((e) => `${e.line}:${e.col}: ${e.message}`),
    [
      "1:1: 'file_root' needs 1 argument (usage: file_root PATH)",
      "2:13: 'file_root' takes 1 argument, got 2 (usage: file_root PATH)",
      "3:11: file_root must be a directory path, got ''",
      "4:14: 'file_root' does not take a block",
      "5:12: 'file_root' is not allowed inside a stream (only at the top level)",
    ],
  );
});

test('stream names: at most 255 characters, refused in the file without an echo of the whole name', () => {
  const name255 = `live/${'a'.repeat(250)}`;
  assert.equal(stream(ok(`stream ${name255} { input fake://fake; }`), name255).name, name255);
  const long = 'x'.repeat(200_000);
  const e = errs(
    `stream ${long} { input fake://fake; }\ntemplate t { prefix ${'p'.repeat(256)}; input publish://; }`,
  );
  assert.equal(e.length, 2);
  assert.match(
    e[0]?.message ?? '',
    /^bad stream name 'x{60}…': it is longer than 255 characters \(200000\)$/,
  );
  assert.match(e[1]?.message ?? '', /^bad prefix 'p{60}…': it is longer than 255 characters \(256\)$/);
});
