// The host form: adds a live host (no ?name=) or edits one (?name=). The
// API checks it by the config file's rules and its message is shown as is.
'use strict';

(() => {
  const { api, el } = KS;
  const name = new URLSearchParams(location.search).get('name') || '';
  const form = document.getElementById('host-form');
  const error = document.getElementById('form-error');
  const LISTS = ['macs', 'nameservers', 'ntp'];
  const TEXTS = ['uuid', 'ipv4', 'gateway4', 'ipv6', 'gateway6', 'timezone', 'interface', 'platform', 'netboot', 'profile'];
  const field = (f) => document.getElementById('f-' + f);
  let loadedProfile = '';
  document.getElementById('live').hidden = true;

  function showError(msg) {
    error.hidden = !msg;
    error.textContent = msg || '';
  }

  async function loadProfiles() {
    const sel = field('profile');
    try {
      const ps = await api('profiles');
      sel.replaceChildren(...ps.map((p) => el('option', { value: p.name }, p.name + (p.origin === 'live' ? ' (live)' : ''))));
      if (loadedProfile) sel.value = loadedProfile;
    } catch (e) {
      if (e.status !== 401) showError('Could not list the profiles: ' + e.message);
    }
  }

  async function loadHost() {
    document.title = 'Edit ' + name + ' · kickstand';
    document.getElementById('form-title').textContent = 'Edit ' + name;
    document.getElementById('f-save').textContent = 'Save';
    document.getElementById('f-cancel').href = 'host.html?name=' + encodeURIComponent(name);
    field('name').value = name;
    field('name').readOnly = true;
    try {
      const h = await api('hosts/' + encodeURIComponent(name));
      for (const f of LISTS) field(f).value = (h[f] || []).join(', ');
      for (const f of TEXTS) if (h[f] !== undefined) field(f).value = h[f];
      loadedProfile = h.profile;
      field('profile').value = h.profile;
      document.getElementById('f-vars').textContent = h.vars && h.vars.length
        ? 'Template variables ' + h.vars.join(', ') + ' are kept (their values are never shown; set new SSH keys above, or change them with `kickstand host edit --var`).' : '';
      if (h.origin === 'file') {
        for (const e of form.elements) e.disabled = true;
        KS.notice(name + ' is declared in the config file, which owns it: edit it there.', true);
      }
    } catch (e) {
      if (e.status === 404) KS.notice('There is no host named “' + name + '”.', true);
      else if (e.status !== 401) showError(e.message);
    }
  }

  function body() {
    const b = {};
    for (const f of LISTS) {
      const v = field(f).value.split(/[\s,]+/).filter(Boolean);
      if (v.length || name) b[f] = v;
    }
    for (const f of TEXTS) {
      const v = field(f).value.trim();
      if (v || name) b[f] = v;
    }
    if (!name) b.name = field('name').value.trim();
    // Public keys are not secret, but the API shows no variable's value:
    // left empty on an edit, the host's keys stay as they are.
    const keys = field('ssh-keys').value.trim();
    if (keys) b.vars = { ssh_keys: keys };
    return b;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('');
    const status = document.getElementById('form-status');
    status.textContent = 'saving…';
    try {
      const h = name
        ? await api('hosts/' + encodeURIComponent(name), { method: 'PATCH', body: body() })
        : await api('hosts', { method: 'POST', body: body() });
      status.textContent = 'saved';
      location.href = 'host.html?name=' + encodeURIComponent(h.name);
    } catch (e) {
      status.textContent = '';
      showError(e.status === 401 ? 'Saving needs a valid API token (paste one under “API token”).' : e.message);
    }
  });

  KS.initToken(() => { loadProfiles(); if (name) loadHost(); });
  loadProfiles();
  if (name) loadHost();
})();
