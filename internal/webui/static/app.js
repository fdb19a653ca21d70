// Shared by the kickstand pages: the API client, the bearer token kept in
// local storage, the live event stream and small DOM helpers. Everything
// that comes from the server is written with textContent, never as HTML:
// syslog lines and installer logs are text from the installed machines.
'use strict';

const KS = (() => {
  const API = new URL('../api/v1/', location.href);
  const TOKEN_KEY = 'kickstand.apiToken';

  function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
  function setToken(t) { t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY); }
  function headers(extra) {
    const h = Object.assign({ Accept: 'application/json' }, extra || {});
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || 'GET', headers: headers(opts.body ? { 'Content-Type': 'application/json' } : null) };
    if (opts.body) init.body = JSON.stringify(opts.body);
    let resp;
    try {
      resp = await fetch(new URL(path, API), init);
    } catch (e) {
      throw new APIError(0, 'kickstand is not reachable');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      if (resp.status === 401) authNeeded();
      throw new APIError(resp.status, (body && body.error) || resp.statusText);
    }
    return body;
  }

  // stream follows the server-sent events at path with the bearer token
  // (EventSource cannot send one), reconnecting with Last-Event-ID.
  // onOpen runs on each (re)connection, so the page can catch up.
  function stream(path, onEvent, onOpen) {
    let last = '';
    const live = document.getElementById('live');
    const show = (state, text) => { if (live) { live.className = 'live ' + state; live.textContent = text; } };
    (async () => {
      for (;;) {
        try {
          const h = headers({ Accept: 'text/event-stream' });
          if (last) h['Last-Event-ID'] = last;
          const resp = await fetch(new URL(path, API), { headers: h, cache: 'no-store' });
          if (resp.status === 401) {
            authNeeded();
            show('off', 'needs a token');
            await sleep(3000);
            continue;
          }
          if (!resp.ok) throw new Error(String(resp.status));
          show('on', 'live');
          if (onOpen) onOpen();
          const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              let id = '', data = '';
              for (const line of block.split('\n')) {
                if (line.startsWith('id: ')) id = line.slice(4);
                else if (line.startsWith('data: ')) data += line.slice(6);
              }
              if (!data) continue;
              if (id) last = id;
              try { onEvent(JSON.parse(data)); } catch (e) { console.error('event', e); }
            }
          }
        } catch (e) { /* reconnect below */ }
        show('off', 'reconnecting');
        await sleep(2000);
      }
    })();
  }

  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  // el builds an element: el('td', {class: 'x'}, 'text', child).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function progressBar(d) {
    const cls = d.stage === 'failed' ? 'failed' : d.stalled ? 'stalled' : d.stage === 'built' ? 'built' : '';
    const inner = el('div');
    inner.style.width = Math.max(0, Math.min(100, d.progress || 0)) + '%';
    return el('div', { class: 'bar-wrap' },
      el('div', { class: 'progress ' + cls, role: 'progressbar', 'aria-valuenow': d.progress || 0, 'aria-valuemin': 0, 'aria-valuemax': 100 }, inner),
      el('span', { class: 'pct' }, (d.progress || 0) + '%'));
  }

  // idle: a host that is not installing and has no install to show.
  function idle(h) {
    const d = h.diagnosis || {};
    return h.state !== 'install' && (!d.stage || d.stage === 'waiting');
  }

  const STAGES = {
    waiting: 'Waiting', dhcp: 'DHCP', loader: 'Loader', config: 'Loader config', kernel: 'Kernel',
    kickstart: 'Kickstart', stage2: 'Stage 2', installing: 'Installing', built: 'Built', failed: 'Failed',
  };

  function stageLabel(d) {
    const s = STAGES[d.stage] || d.stage || '—';
    return d.stalled ? s + ' · stalled' : s;
  }

  function stageClass(d) {
    return 'stage ' + (d.stage === 'failed' ? 'failed' : d.stalled ? 'stalled' : d.stage === 'built' ? 'built' : '');
  }

  function ago(iso) {
    if (!iso) return '—';
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return new Date(iso).toLocaleDateString();
  }

  function clock(iso) {
    const d = new Date(iso);
    const p = (n, w) => String(n).padStart(w || 2, '0');
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }

  function notice(text, bad) {
    const n = document.getElementById('notice');
    if (!n) return;
    n.hidden = !text;
    n.className = 'notice' + (bad ? ' bad' : '');
    n.textContent = text || '';
  }

  function authNeeded() {
    notice(token()
      ? 'The API token saved in this browser was refused (revoked or mistyped). Paste a valid one under “API token”.'
      : 'This kickstand needs an API token to show hosts. Create one with `kickstand token create` and paste it under “API token”.', true);
    document.getElementById('token-panel').hidden = false;
  }

  // The token panel: paste once, kept in local storage.
  async function checkToken() {
    const status = document.getElementById('token-status');
    const toggle = document.getElementById('token-toggle');
    try {
      const who = await api('whoami');
      if (who.authenticated) {
        status.textContent = 'Using token “' + who.token + '”.';
        toggle.textContent = 'Token: ' + who.token;
      } else if (token()) {
        status.textContent = 'This token is not valid.';
        toggle.textContent = 'API token (invalid)';
      } else {
        status.textContent = who.open_reads ? 'Reads are open; a token is needed to build or mark hosts.' : 'No token saved.';
        toggle.textContent = 'API token';
      }
      return who;
    } catch (e) {
      status.textContent = e.message;
      return null;
    }
  }

  function initToken(onChange) {
    const panel = document.getElementById('token-panel');
    const input = document.getElementById('token-input');
    document.getElementById('token-toggle').addEventListener('click', () => {
      panel.hidden = !panel.hidden;
      if (!panel.hidden) input.focus();
    });
    document.getElementById('token-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      input.value = '';
      const who = await checkToken();
      if (who && (who.authenticated || who.open_reads)) {
        notice('');
        panel.hidden = true;
      }
      if (onChange) onChange();
    });
    document.getElementById('token-forget').addEventListener('click', async () => {
      setToken('');
      await checkToken();
      if (onChange) onChange();
    });
    checkToken();
  }

  return { api, stream, el, progressBar, idle, stageLabel, stageClass, ago, clock, notice, initToken, sleep, APIError };
})();
