// The admin page: live state from /api/live (Server-Sent Events, one JSON snapshot a second),
// so nothing reloads or polls. Streams with input state, bitrate and viewers per protocol and
// their auth settings (read-only); sessions with kick and ban; bans with unban; a player per
// stream (hls.js) using an admin view token (ADM1) when the server hands one out, so protected
// streams play too. Credentials are the browser's: edit_auth Basic, or loopback without it.
'use strict';

const text = (v) => (v === undefined || v === null ? '' : String(v));

function cell(row, value, className) {
  const td = document.createElement('td');
  td.textContent = text(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(row, label, onClick) {
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.textContent = label;
  b.addEventListener('click', onClick);
  td.appendChild(b);
  row.appendChild(td);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) {
    let why = String(res.status);
    try {
      const e = await res.json();
      if (e && e.error) why = `${e.error.code}: ${e.error.message}`;
    } catch {
      // not JSON: keep the status
    }
    throw new Error(`${method} ${path}: ${why}`);
  }
  return res.status === 204 ? undefined : res.json();
}

function report(err) {
  const status = document.getElementById('status');
  status.textContent = String(err);
  status.className = 'error';
}

async function adminToken() {
  try {
    const r = await api('POST', '/api/tokens', { kind: 'admin' });
    return r && r.token;
  } catch {
    return undefined; // admin view disabled: play as an ordinary viewer
  }
}

let hls;
async function play(name) {
  const box = document.getElementById('player');
  box.replaceChildren();
  const label = document.createElement('p');
  label.textContent = `playing ${name}`;
  const video = document.createElement('video');
  video.controls = true;
  video.muted = true;
  video.dataset.stream = name;
  box.append(label, video);
  const token = await adminToken();
  const url = `/${name}/index.m3u8${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  if (hls) hls.destroy();
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls();
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }
  void video.play().catch(() => undefined);
}

function fill(id, rows, key, render) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    tr.dataset.key = key(r);
    render(tr, r);
    body.appendChild(tr);
  }
}

const perProto = (counts) =>
  Object.entries(counts || {})
    .map(([p, n]) => `${p}: ${n}`)
    .join(', ');

function authText(a) {
  if (!a) return '';
  const lines = [`on_play: ${a.on_play || 'open (no backend)'}`];
  if (a.on_publish) lines.push(`on_publish: ${a.on_publish}`);
  if (a.session_keys) lines.push(`session_keys: ${a.session_keys.join(',')}`);
  if (a.max_sessions !== null && a.max_sessions !== undefined) {
    lines.push(`max_sessions: ${a.max_sessions}${a.soft_limitation ? ' (soft)' : ''}`);
  }
  if (a.domains) lines.push(`domains: ${a.domains.join(',')}`);
  if (a.timeout_sec) lines.push(`timeout: ${a.timeout_sec}s`);
  if (a.password_protected) lines.push('publish password set');
  return lines.join('\n');
}

function render(state) {
  fill(
    'streams',
    state.streams,
    (s) => s.name,
    (tr, s) => {
      cell(tr, s.name);
      cell(
        tr,
        [
          s.input.state,
          Object.keys(s.publishers || {}).length ? `via ${Object.keys(s.publishers).join(',')}` : '',
          s.input.restarts ? `(${s.input.restarts} restarts)` : '',
        ]
          .filter(Boolean)
          .join(' '),
        s.input.state === 'publishing' || s.input.state === 'running' ? 'live' : 'muted',
      );
      cell(tr, s.bitrate_kbps === null ? '' : `${s.bitrate_kbps} kbit/s`);
      cell(tr, perProto(s.viewers));
      const t = s.tracks;
      cell(
        tr,
        [
          t.video && `${t.video.codec} ${t.video.width || ''}x${t.video.height || ''}`,
          t.audio && t.audio.codec,
        ]
          .filter(Boolean)
          .join(' + '),
      );
      cell(tr, authText(s.auth), 'auth');
      button(tr, 'play', () => void play(s.name).catch(report));
    },
  );
  fill(
    'sessions',
    state.sessions,
    (s) => s.id,
    (tr, s) => {
      cell(tr, text(s.id).slice(0, 8));
      cell(tr, s.type);
      cell(tr, s.name);
      cell(tr, s.proto);
      cell(tr, s.ip);
      cell(tr, s.user_id);
      cell(tr, s.token_hash);
      cell(tr, s.bytes);
      cell(tr, s.opened_at ? new Date(s.opened_at).toLocaleTimeString() : '');
      button(tr, 'kick', () => void api('DELETE', `/api/sessions/${encodeURIComponent(s.id)}`).catch(report));
      button(tr, 'ban', () => void api('POST', '/api/bans', { session_id: s.id }).catch(report));
    },
  );
  fill(
    'bans',
    state.bans,
    (b) => b.id_key,
    (tr, b) => {
      cell(tr, b.id_key);
      cell(tr, b.name);
      cell(tr, `${b.reason}${b.ban ? ' (ban)' : ''}`);
      cell(tr, b.until ? new Date(b.until).toLocaleTimeString() : '');
      button(
        tr,
        'unban',
        () => void api('DELETE', `/api/bans/${encodeURIComponent(b.id_key)}`).catch(report),
      );
    },
  );
  const status = document.getElementById('status');
  status.textContent = `live, updated ${new Date(state.time).toLocaleTimeString()}`;
  status.className = 'live';
  document.getElementById('totals').textContent =
    `${state.streams.length} streams, ${state.sessions_total} sessions, ${state.bans_total} bans`;
}

function connect() {
  const source = new EventSource('/api/live');
  source.addEventListener('state', (e) => render(JSON.parse(e.data)));
  source.addEventListener('error', () => {
    const status = document.getElementById('status');
    status.textContent = 'disconnected; reconnecting…';
    status.className = 'error';
  });
}

connect();
