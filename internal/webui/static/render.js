// A host's rendered config: what the server would send it, from the
// API's preview (the function the server answers with).
'use strict';

(() => {
  const { api, el } = KS;
  const name = new URLSearchParams(location.search).get('name') || '';
  const KINDS = ['ipxe', 'grub', 'pxelinux', 'cmdline', 'kickstart'];
  const params = new URLSearchParams(location.search);
  let kind = KINDS.includes(params.get('kind')) ? params.get('kind') : 'ipxe';
  const $ = (id) => document.getElementById(id);
  document.getElementById('live').hidden = true;
  document.title = name + ' rendered · kickstand';
  $('r-host').textContent = name;
  $('r-host').href = 'host.html?name=' + encodeURIComponent(name);

  const tabs = KINDS.map((k) => {
    const b = el('button', { type: 'button', class: 'ghost', role: 'tab', 'data-kind': k }, k);
    b.addEventListener('click', () => { kind = k; show(); });
    return b;
  });
  $('r-kinds').replaceChildren(...tabs);
  for (const id of ['r-firmware', 'r-asbuild', 'r-secrets']) $(id).addEventListener('change', show);

  const list = (ul, items) => ul.replaceChildren(...(items || []).map((s) => el('li', {}, s)));

  async function show() {
    for (const t of tabs) t.setAttribute('aria-selected', t.dataset.kind === kind ? 'true' : 'false');
    const q = new URLSearchParams();
    if ($('r-firmware').value) q.set('firmware', $('r-firmware').value);
    if ($('r-asbuild').checked) q.set('as_build', 'true');
    if ($('r-secrets').checked) q.set('secrets', 'true');
    $('r-error').hidden = true;
    try {
      const r = await api('hosts/' + encodeURIComponent(name) + '/render/' + kind + '?' + q);
      $('rendered').textContent = r.body;
      $('rendered').dataset.kind = kind;
      $('rendered').dataset.secrets = r.secrets ? 'shown' : 'hidden';
      $('r-refused').hidden = !r.refused;
      $('r-refused').textContent = r.refused || '';
      list($('r-explain'), r.explain);
      list($('r-problems'), r.problems);
      $('r-problems-box').hidden = !(r.problems && r.problems.length);
    } catch (e) {
      $('rendered').textContent = '';
      $('rendered').dataset.kind = '';
      $('r-error').hidden = false;
      $('r-error').textContent = e.status === 401 && $('r-secrets').checked
        ? 'Showing secrets needs a valid API token.' : e.message;
    }
  }

  async function start() {
    try {
      const h = await api('hosts/' + encodeURIComponent(name));
      // A host that is not installing has no kickstart now: show what it
      // would get after Build, as the CLI's --as-build does.
      if (h.state !== 'install') $('r-asbuild').checked = true;
    } catch (e) { /* shown by show() */ }
    show();
  }

  KS.initToken(start);
  start();
})();
