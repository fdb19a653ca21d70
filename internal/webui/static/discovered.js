// The discovered machines page: what each unknown machine's firmware
// reported (GET /discovered), and an Assign form for those still waiting
// (POST /discovered/{mac}/assign). Reported text is written as text only.
'use strict';

(() => {
  const { api, el, ago, notice } = KS;
  const body = document.querySelector('#discovered tbody');
  let profiles = [];
  const editing = new Set(); // MACs whose form has focus: not redrawn

  function assignForm(d) {
    const name = el('input', { type: 'text', class: 'assign-name', placeholder: 'host name', 'aria-label': 'Host name for ' + d.mac, spellcheck: 'false' });
    const prof = el('select', { class: 'assign-profile', 'aria-label': 'Profile for ' + d.mac },
      ...profiles.map((p) => el('option', { value: p.name }, p.name)));
    const btn = el('button', { type: 'submit', class: 'assign' }, 'Assign');
    const msg = el('span', { class: 'muted small assign-msg' });
    const form = el('form', { class: 'assign-form' }, name, ' ', prof, ' ', btn, ' ', msg);
    form.addEventListener('focusin', () => editing.add(d.mac));
    form.addEventListener('focusout', () => editing.delete(d.mac));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      msg.textContent = 'assigning…';
      try {
        const h = await api('discovered/' + encodeURIComponent(d.mac) + '/assign', { method: 'POST', body: { name: name.value.trim(), profile: prof.value } });
        editing.delete(d.mac);
        notice('Assigned ' + d.mac + ' to ' + h.name + ': it installs at its next poll.');
        load();
      } catch (e) {
        msg.textContent = e.message;
        btn.disabled = false;
      }
    });
    return form;
  }

  function row(d) {
    const host = d.host
      ? el('a', { href: 'host.html?name=' + encodeURIComponent(d.host), class: 'assigned' }, d.host)
      : assignForm(d);
    return el('tr', { 'data-mac': d.mac, 'data-host': d.host || '' },
      el('td', {}, el('code', {}, d.mac), d.proof === 'claimed' ? el('span', { class: 'muted small', title: 'Not proven by a DHCP lease of kickstand' }, ' (claimed)') : null),
      el('td', {}, d.addr || '—'),
      el('td', {}, d.manufacturer || '—'),
      el('td', {}, d.product || '—'),
      el('td', {}, d.serial || '—'),
      el('td', {}, d.asset || '—'),
      el('td', { class: 'small' }, d.uuid || '—'),
      el('td', {}, [d.platform, d.buildarch].filter(Boolean).join(' / ') || '—'),
      el('td', { class: 'muted' }, ago(d.last_seen)),
      el('td', {}, host));
  }

  async function load() {
    try {
      if (!profiles.length) profiles = await api('profiles');
      const ds = await api('discovered');
      const keep = new Map([...body.children].filter((tr) => editing.has(tr.dataset.mac)).map((tr) => [tr.dataset.mac, tr]));
      body.replaceChildren(...ds.map((d) => (!d.host && keep.get(d.mac)) || row(d)));
      document.getElementById('empty').hidden = ds.length > 0;
    } catch (e) {
      if (e.status !== 401) notice(e.message, true);
    }
  }

  KS.initToken(load);
  load();
  setInterval(load, 5000);
})();
