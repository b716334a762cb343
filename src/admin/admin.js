// The admin page: polls the JSON API and renders streams, sessions and bans; plays a stream with
// hls.js using an admin view token (ADM1) when the server hands one out, so protected streams play too.
'use strict';

const text = (v) => (v === undefined || v === null ? '' : String(v));

function cell(row, value) {
  const td = document.createElement('td');
  td.textContent = text(value);
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
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
  return res.status === 204 ? undefined : res.json();
}

async function adminToken() {
  try {
    const r = await api('POST', '/api/tokens', { kind: 'admin' });
    return r && r.token;
  } catch {
    return undefined; // admin view disabled or not available: play as an ordinary viewer
  }
}

let hls;
async function play(name) {
  const box = document.getElementById('player');
  box.textContent = `playing ${name}`;
  const video = document.createElement('video');
  video.controls = true;
  video.muted = true;
  box.appendChild(video);
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

function fill(id, rows, render) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    render(tr, r);
    body.appendChild(tr);
  }
}

async function refresh() {
  const status = document.getElementById('status');
  try {
    const [streams, sessions, bans] = await Promise.all([
      api('GET', '/api/streams'),
      api('GET', '/api/sessions'),
      api('GET', '/api/bans').catch(() => ({ bans: [] })),
    ]);
    fill('streams', streams.streams, (tr, s) => {
      cell(tr, s.name);
      cell(tr, `${s.input.urls.join(' ')} (${s.input.state})`);
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
      cell(
        tr,
        Object.entries(s.clients)
          .map(([p, n]) => `${p}: ${n}`)
          .join(', '),
      );
      cell(
        tr,
        s.auth
          ? `${s.auth.on_play || 'open'}${s.auth.session_keys ? ` keys=${s.auth.session_keys.join(',')}` : ''}`
          : '',
      );
      button(tr, 'play', () => void play(s.name));
    });
    const list = Array.isArray(sessions) ? sessions : sessions.sessions || [];
    fill('sessions', list, (tr, s) => {
      cell(tr, text(s.id).slice(0, 8));
      cell(tr, s.type);
      cell(tr, s.name);
      cell(tr, s.proto);
      cell(tr, s.ip);
      cell(tr, s.user_id);
      cell(tr, s.token_hash);
      cell(tr, s.bytes);
      cell(tr, s.opened_at ? new Date(s.opened_at).toLocaleTimeString() : '');
      button(tr, 'kick', () => void api('DELETE', `/api/sessions/${encodeURIComponent(s.id)}`).then(refresh));
    });
    fill('bans', bans.bans || [], (tr, b) => {
      cell(tr, b.id_key);
      cell(tr, b.reason);
      cell(tr, b.until ? new Date(b.until).toLocaleTimeString() : '');
      button(
        tr,
        'unban',
        () => void api('DELETE', `/api/bans/${encodeURIComponent(b.id_key)}`).then(refresh),
      );
    });
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.className = 'muted';
  } catch (err) {
    status.textContent = String(err);
    status.className = 'error';
  }
}

void refresh();
setInterval(refresh, 2000);
