// The hosts table: state, install progress and diagnosis of every host,
// kept current from the event stream (each event refetches its host).
'use strict';

(() => {
  const { api, stream, el } = KS;
  const tbody = document.querySelector('#hosts tbody');
  const filter = document.getElementById('filter');
  const onlyAttention = document.getElementById('only-attention');
  const hosts = new Map(); // name -> host
  const rows = new Map(); // name -> tr

  function needsAttention(h) {
    const d = h.diagnosis || {};
    return d.stalled || d.stage === 'failed' || !!d.cause;
  }

  function row(h) {
    const d = h.diagnosis || { stage: 'waiting', progress: 0 };
    const link = el('a', { href: 'host.html?name=' + encodeURIComponent(h.name) }, h.name);
    const cause = d.cause ? el('span', { class: 'cause' + (d.stalled || d.stage === 'failed' ? '' : ' warn'), title: d.cause }, d.cause) : el('span', { class: 'muted' }, '—');
    const tr = el('tr', { 'data-host': h.name, 'data-state': h.state },
      el('td', { class: 'name' }, link),
      el('td', {}, el('span', { class: 'badge ' + h.state }, h.state)),
      el('td', {}, h.profile || '—'),
      el('td', {}, KS.idle(h) ? el('span', { class: 'muted' }, '—') : KS.progressBar(d)),
      el('td', {}, KS.idle(h) ? el('span', { class: 'muted' }, 'not installing') : el('span', { class: KS.stageClass(d) }, KS.stageLabel(d))),
      el('td', { class: 'diag' }, cause),
      el('td', { class: 'muted', title: h.last_seen || '' }, KS.ago(h.last_seen)));
    return tr;
  }

  function visible(h) {
    const q = filter.value.trim().toLowerCase();
    if (onlyAttention.checked && !needsAttention(h)) return false;
    if (!q) return true;
    const d = h.diagnosis || {};
    return [h.name, h.state, h.profile, d.stage, d.cause, (h.macs || []).join(' '), h.ipv4, h.ipv6]
      .some((s) => s && String(s).toLowerCase().includes(q));
  }

  function render() {
    const names = [...hosts.keys()].sort();
    const frag = document.createDocumentFragment();
    rows.clear();
    for (const n of names) {
      const h = hosts.get(n);
      if (!visible(h)) continue;
      const tr = row(h);
      rows.set(n, tr);
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    document.getElementById('empty').hidden = hosts.size > 0;
    summary();
  }

  function summary() {
    let installing = 0, done = 0, stalled = 0, failed = 0;
    for (const h of hosts.values()) {
      const d = h.diagnosis || {};
      if (d.stage === 'failed') failed++;
      else if (d.stalled) stalled++;
      if (h.state === 'install') installing++;
      if (d.stage === 'built') done++;
    }
    const stat = (n, label, cls) => el('div', { class: 'stat ' + (n ? cls : '') }, el('b', {}, String(n)), el('span', {}, label));
    document.getElementById('summary').replaceChildren(
      stat(hosts.size, 'hosts', ''), stat(installing, 'installing', ''), stat(done, 'built', 'ok'),
      stat(stalled, 'stalled', 'warn'), stat(failed, 'failed', 'bad'));
  }

  async function loadAll() {
    try {
      const list = await api('hosts');
      hosts.clear();
      for (const h of list) hosts.set(h.name, h);
      KS.notice('');
      render();
    } catch (e) {
      if (e.status !== 401) KS.notice('Could not load hosts: ' + e.message, true);
    }
  }

  // Events mark their host dirty; dirty hosts are refetched at most once
  // a second, and a burst touching many hosts becomes one list read, so
  // a large install wave costs the server a bounded number of requests.
  const dirty = new Set();
  let flushing = null;
  function refresh(name) {
    if (!name) return;
    dirty.add(name);
    if (!flushing) flushing = setTimeout(flush, 1000);
  }

  async function flush() {
    const names = [...dirty];
    dirty.clear();
    try {
      if (names.length > 10 || names.some((n) => !hosts.has(n))) {
        await loadAll();
        return;
      }
      await Promise.all(names.map(refetch));
      summary();
    } finally {
      flushing = dirty.size ? setTimeout(flush, 1000) : null;
    }
  }

  async function refetch(name) {
    try {
      const h = await api('hosts/' + encodeURIComponent(name));
      const d = h.diagnosis;
      h.diagnosis = { stage: d.stage, progress: d.progress, stalled: d.stalled, cause: d.cause };
      hosts.set(name, h);
      const old = rows.get(name);
      if (!visible(h)) { if (old) { old.remove(); rows.delete(name); } return; }
      const tr = row(h);
      tr.classList.add('flash');
      if (old) { old.replaceWith(tr); rows.set(name, tr); } else render();
    } catch (e) {
      if (e.status === 404) { hosts.delete(name); render(); }
    }
  }

  // The unknown clients: what the server kept of events that matched no
  // host (GET /unknown), newest first.
  async function loadUnknown() {
    try {
      const u = await api('unknown');
      const body = document.querySelector('#unknown tbody');
      const evs = (u.events || []).slice().reverse().slice(0, 50);
      body.replaceChildren(...evs.map((e) => el('tr', {},
        el('td', { class: 'muted' }, new Date(e.at).toLocaleTimeString()),
        el('td', {}, e.kind),
        el('td', {}, (e.data && (e.data.client || e.data.ip || e.data.mac)) || '—'),
        el('td', { class: 'diag' }, e.detail + (e.data && e.data.count > 1 ? ' ×' + e.data.count : '')))));
      document.getElementById('unknown-empty').hidden = evs.length > 0;
    } catch (e) {
      // An older server or no token: the section stays empty.
    }
  }

  filter.addEventListener('input', render);
  onlyAttention.addEventListener('change', render);
  KS.initToken(() => { loadAll(); loadUnknown(); });
  stream('events/stream', (e) => refresh(e.host), loadAll);
  // Stalls are a matter of time passing: re-read everything now and then.
  setInterval(loadAll, 30000);
  setInterval(loadUnknown, 5000);
})();
