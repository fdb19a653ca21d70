// One host: its diagnosis, its live timeline (syslog lines highlighted)
// and the build and mark-local actions.
'use strict';

(() => {
  const { api, stream, el } = KS;
  const name = new URLSearchParams(location.search).get('name') || '';
  const tbody = document.querySelector('#timeline tbody');
  const wrap = document.getElementById('timeline-wrap');
  const follow = document.getElementById('follow');
  const kindsBox = document.getElementById('kinds');
  const seen = new Set();
  const hidden = new Set(JSON.parse(localStorage.getItem('kickstand.hiddenKinds') || '[]'));
  const CATEGORIES = ['dhcp', 'tftp', 'http', 'syslog', 'callback', 'state', 'inventory', 'lint'];
  let lastID = 0;
  let refreshTimer = null;

  document.title = name + ' · kickstand';
  document.getElementById('host-name').textContent = name;

  function category(kind) { return kind.split('.')[0]; }

  for (const c of CATEGORIES) {
    const box = el('input', { type: 'checkbox', checked: !hidden.has(c) });
    box.addEventListener('change', () => {
      box.checked ? hidden.delete(c) : hidden.add(c);
      localStorage.setItem('kickstand.hiddenKinds', JSON.stringify([...hidden]));
      for (const tr of tbody.children) tr.hidden = hidden.has(tr.dataset.category);
    });
    kindsBox.append(el('label', {}, box, c));
  }

  const ERR = /\b(error|fail(ed|ure)?|traceback|critical|fatal|unreachable|denied|not found)\b/i;
  const WARN = /\bwarn(ing)?\b/i;

  function eventRow(e) {
    const cat = category(e.kind);
    let kindClass = 'kind ' + cat;
    if (e.kind === 'callback.failed') kindClass = 'kind callback-failed';
    // A request's status, and why kickstand refused it, so a refused
    // fetch does not read like a success.
    const d = e.data || {};
    const status = d.status === undefined ? '' : String(d.status) + (d.refused ? ' refused' : '');
    const tr = el('tr', { 'data-id': e.id, 'data-kind': e.kind, 'data-category': cat },
      el('td', { class: 't-time', title: e.at }, KS.clock(e.at)),
      el('td', {}, el('span', { class: kindClass }, e.kind)),
      el('td', { class: 'status' }, status),
      el('td', { class: 'detail' }, d.refused ? (e.detail || '').replace(' refused: ' + d.refused, '') : e.detail || '',
        d.refused ? el('span', { class: 'reason' }, d.refused) : null));
    tr.dataset.category = cat;
    if (cat === 'syslog') {
      tr.classList.add('syslog');
      if (ERR.test(e.detail)) tr.classList.add('err');
      else if (WARN.test(e.detail)) tr.classList.add('warn');
    }
    const st = d.status;
    if ((st && st >= 400) || d.refused || (cat === 'tftp' && d.completed === false && !d.probe)) tr.classList.add('failed-fetch');
    tr.hidden = hidden.has(cat);
    return tr;
  }

  function addEvents(evs, fresh) {
    const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const e of evs) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      lastID = Math.max(lastID, e.id);
      const tr = eventRow(e);
      if (fresh) tr.classList.add('new');
      frag.append(tr);
    }
    tbody.append(frag);
    document.getElementById('timeline-empty').hidden = seen.size > 0;
    if (follow.checked && (atBottom || !fresh)) wrap.scrollTop = wrap.scrollHeight;
  }

  function showHost(h) {
    const d = h.diagnosis || { stage: 'waiting', progress: 0 };
    const h1 = document.getElementById('host-name');
    h1.replaceChildren(h.name, el('span', { class: 'badge ' + h.state, id: 'host-state' }, h.state));
    const fact = (label, value) => value ? el('span', {}, label + ' ', el('b', {}, value)) : null;
    document.getElementById('facts').replaceChildren(...[
      fact('profile', h.profile),
      fact('MAC', (h.macs || []).join(', ')),
      fact('IPv4', h.ipv4), fact('IPv6', h.ipv6),
      h.state === 'install' && h.token_expires ? fact('build token valid until', new Date(h.token_expires).toLocaleString()) : null,
      fact('origin', h.origin),
    ].filter(Boolean));
    const stage = document.getElementById('diag-stage');
    stage.className = KS.stageClass(d);
    stage.textContent = KS.idle(h) ? 'not installing' : KS.stageLabel(d);
    const bar = document.getElementById('diag-bar');
    bar.style.width = (d.progress || 0) + '%';
    bar.parentElement.className = 'progress ' + (d.stage === 'failed' ? 'failed' : d.stalled ? 'stalled' : d.stage === 'built' ? 'built' : '');
    document.getElementById('diag-pct').textContent = (d.progress || 0) + '%';
    document.getElementById('diag-since').textContent = d.since ? 'last progress ' + KS.ago(d.since) : '';
    const cause = document.getElementById('diag-cause');
    cause.hidden = !d.cause;
    cause.textContent = d.cause || '';
    const hint = document.getElementById('diag-hint');
    hint.hidden = !d.hint;
    hint.textContent = d.hint || '';
    const log = document.getElementById('diag-log');
    log.hidden = !(d.log_tail && d.log_tail.length);
    document.getElementById('diag-log-text').textContent = (d.log_tail || []).join('\n');
    if (d.stage === 'failed' && d.log_tail && d.log_tail.length) log.open = true;
    document.getElementById('render-link').href = 'render.html?name=' + encodeURIComponent(h.name);
    const edit = document.getElementById('edit-link');
    edit.href = 'host-edit.html?name=' + encodeURIComponent(h.name);
    edit.hidden = h.origin !== 'live'; // the file's hosts are edited in the file
    document.getElementById('file-owned').hidden = h.origin !== 'file';
    document.getElementById('build').textContent = h.state === 'install' ? 'Rebuild' : 'Build';
    document.getElementById('mark-local').disabled = h.state === 'local';
  }

  async function loadHost() {
    try {
      showHost(await api('hosts/' + encodeURIComponent(name)));
      KS.notice('');
    } catch (e) {
      if (e.status === 404) KS.notice('There is no host named “' + name + '”.', true);
      else if (e.status !== 401) KS.notice('Could not load the host: ' + e.message, true);
    }
  }

  async function loadTimeline() {
    try {
      for (;;) {
        const evs = await api('hosts/' + encodeURIComponent(name) + '/timeline?after=' + lastID + '&limit=1000');
        addEvents(evs, false);
        if (evs.length < 1000) break;
      }
    } catch (e) { /* shown by loadHost */ }
  }

  // refreshHost rereads the diagnosis at most once a second while events
  // pour in (package fetches come several a second).
  function refreshHost() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; loadHost(); }, 1000);
  }

  async function act(button, path, body, done) {
    const status = document.getElementById('action-status');
    button.disabled = true;
    status.textContent = 'working…';
    try {
      showHost(await api(path, { method: 'POST', body }));
      status.textContent = done;
    } catch (e) {
      status.textContent = e.status === 401 ? 'needs a valid API token' : e.message;
    } finally {
      button.disabled = false;
      setTimeout(() => { if (status.textContent === done) status.textContent = ''; }, 5000);
    }
  }

  // Build asks once more: it starts a reinstall at the host's next boot.
  const build = document.getElementById('build');
  let armed = null;
  build.addEventListener('click', () => {
    if (!armed) {
      build.textContent = 'Confirm: reinstall ' + name;
      build.classList.add('danger');
      armed = setTimeout(() => { armed = null; build.classList.remove('danger'); loadHost(); }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    build.classList.remove('danger');
    act(build, 'hosts/' + encodeURIComponent(name) + '/build', null, 'in install state: the next network boot installs it');
  });
  const local = document.getElementById('mark-local');
  local.addEventListener('click', () => act(local, 'hosts/' + encodeURIComponent(name) + '/state', { state: 'local' }, 'marked local'));

  async function catchUp() { await loadTimeline(); loadHost(); }

  KS.initToken(catchUp);
  loadHost();
  // The stream starts after the timeline read first (and resumes after the
  // last id it delivered); events both see are shown once.
  loadTimeline().then(() => {
    stream('events/stream?host=' + encodeURIComponent(name) + '&after=' + lastID, (e) => {
      addEvents([e], true);
      refreshHost();
    }, catchUp);
  });
  setInterval(loadHost, 30000);
})();
