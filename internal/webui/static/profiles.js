// Profiles and distros, with who owns each: the config file or live edits.
'use strict';

(() => {
  const { api, el } = KS;
  document.getElementById('live').hidden = true;
  const dash = (s) => s || '—';
  const owner = (o) => el('span', { class: 'badge ' + (o === 'live' ? 'install' : '') }, o);

  async function load() {
    try {
      const [ps, ds] = await Promise.all([api('profiles'), api('distros')]);
      document.querySelector('#profiles tbody').replaceChildren(...ps.map((p) => el('tr', { 'data-name': p.name, 'data-origin': p.origin },
        el('td', { class: 'name' }, p.name), el('td', {}, p.distro), el('td', {}, dash(p.loader)), el('td', {}, dash(p.kickstart)),
        el('td', {}, el('code', {}, dash(p.kernel_args))), el('td', {}, owner(p.origin)))));
      document.querySelector('#distros tbody').replaceChildren(...ds.map((d) => el('tr', { 'data-name': d.name, 'data-origin': d.origin },
        el('td', { class: 'name' }, d.name), el('td', {}, d.release), el('td', {}, dash(d.arch)), el('td', {}, el('code', {}, d.kernel)),
        el('td', {}, el('code', {}, dash(d.tree))), el('td', {}, owner(d.origin)))));
      KS.notice('');
    } catch (e) {
      if (e.status !== 401) KS.notice('Could not load profiles and distros: ' + e.message, true);
    }
  }

  KS.initToken(load);
  load();
})();
