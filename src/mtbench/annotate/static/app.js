// The annotation page: plain DOM, no framework, no network beyond this server. All answer text is
// set through textContent, so model output can never inject markup.
'use strict';
(() => {
  let STORE = null; // per study (vote file), set from /api/config
  let S = null; // UI strings of the benchmark's language
  let annotator = null;
  let busy = false;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.append(k);
    return e;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function showError(msg) {
    $('error').textContent = msg;
    $('error').hidden = !msg;
  }

  // Retries while the server is unreachable or restarting, so a vote clicked during a restart is
  // delivered once the server is back instead of being lost; 4xx answers are final.
  async function call(path, body) {
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      } catch {
        res = null;
      }
      if (res && res.status < 500) {
        $('offline').hidden = true;
        const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
        if (!res.ok) throw Object.assign(new Error(data.error || `HTTP ${res.status}`), { status: res.status });
        return data;
      }
      if (S) {
        $('offline').textContent = S.offline;
        $('offline').hidden = false;
      }
      await sleep(Math.min(250 * 2 ** attempt, 2000));
    }
  }

  function instructions(open) {
    const d = el('details', { class: 'card instructions' }, el('summary', { text: S.showInstructions }));
    if (open) d.open = true;
    for (const p of S.instructions) d.append(el('p', { text: p }));
    return d;
  }

  function renderWho() {
    const who = $('who');
    who.textContent = '';
    if (!annotator) return;
    who.append(
      `${S.signedInAs}: ${annotator}`,
      el('button', { id: 'switch', type: 'button', text: S.switchAnnotator, on: { click: () => { localStorage.removeItem(STORE); annotator = null; renderStart(); } } }),
    );
  }

  function renderStart() {
    renderWho();
    const input = el('input', { id: 'name', autocomplete: 'off', required: '', maxlength: '200' });
    const form = el('form', { class: 'card start' }, el('label', { for: 'name', text: S.namePrompt + ': ' }), input, el('button', { id: 'start', type: 'submit', text: S.start }), el('p', { class: 'note', text: S.nameNote }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!input.value.trim()) return;
      try {
        const r = await call('/api/session', { name: input.value });
        annotator = r.annotator;
        localStorage.setItem(STORE, annotator);
        await next();
      } catch (e) {
        showError(e.message);
      }
    });
    $('main').replaceChildren(instructions(true), form);
    input.focus();
  }

  function column(title, turns, current, id) {
    const box = el('div', { class: 'card' }, el('h3', { text: title }));
    const a = el('div', { class: 'text answer', id, text: turns[current] });
    box.append(a);
    return box;
  }

  function renderTask(r) {
    const t = r.task;
    renderWho();
    const cur = t.turn - 1;
    const main = $('main');
    const task = el('section', { id: 'task', 'data-question': String(t.questionId), 'data-turn': String(t.turn) });
    task.append(el('div', { class: 'meta', id: 'meta', text: `${S.question} ${t.questionId} · ${t.category} · ${S.turn} ${t.turn}/${t.turns} · ${r.votes} ${S.voted}` }));
    if (cur > 0) {
      // Earlier turns give each assistant's conversation so far, on the same side as its current answer.
      const ctx = el('details', { class: 'card context' }, el('summary', { text: S.firstTurn }));
      ctx.open = true;
      for (let i = 0; i < cur; i++) {
        ctx.append(el('div', { class: 'text question', text: t.questions[i] }));
        ctx.append(el('div', { class: 'columns' }, column(S.assistantA, t.left, i, `left-turn${i + 1}`), column(S.assistantB, t.right, i, `right-turn${i + 1}`)));
      }
      task.append(ctx);
    }
    task.append(el('div', { class: 'card' }, el('div', { class: 'meta', text: `${S.turn} ${t.turn}` }), el('div', { class: 'text question', id: 'question', text: t.questions[cur] })));
    if (t.reference && t.reference[cur]) {
      const ref = el('details', { class: 'card reference', id: 'reference' }, el('summary', { text: S.reference }), el('div', { class: 'text', text: t.reference[cur] }));
      task.append(ref);
    }
    task.append(el('div', { class: 'columns' }, column(S.assistantA, t.left, cur, 'left-answer'), column(S.assistantB, t.right, cur, 'right-answer')));
    const btn = (choice, label, cls) => el('button', { type: 'button', class: cls || '', 'data-choice': choice, text: label, on: { click: () => vote(t.token, choice) } });
    task.append(el('div', { class: 'buttons' }, btn('A', S.aBetter, 'primary'), btn('B', S.bBetter, 'primary'), btn('tie', S.tie), btn('bothbad', S.bothBad), btn('skip', S.skip, 'skip')));
    main.replaceChildren(instructions(false), task);
    window.scrollTo(0, 0);
  }

  function renderDone(r) {
    renderWho();
    $('main').replaceChildren(el('div', { class: 'card', id: 'done', text: `${S.done} (${r.votes} ${S.voted})` }));
  }

  async function next() {
    showError('');
    try {
      const r = await call(`/api/next?annotator=${encodeURIComponent(annotator)}`);
      if (r.task) renderTask(r);
      else renderDone(r);
    } catch (e) {
      if (e.status === 400) {
        localStorage.removeItem(STORE);
        annotator = null;
        renderStart();
      }
      showError(e.message);
    }
  }

  async function vote(token, choice) {
    if (busy) return;
    busy = true;
    for (const b of document.querySelectorAll('.buttons button')) b.disabled = true;
    try {
      await call(choice === 'skip' ? '/api/skip' : '/api/vote', { token, choice, annotator });
      await next();
    } catch (e) {
      showError(e.message);
      await next();
    } finally {
      busy = false;
    }
  }

  (async () => {
    const cfg = await call('/api/config');
    S = cfg.strings;
    STORE = `polytune-annotator-${cfg.study}`;
    annotator = localStorage.getItem(STORE);
    document.documentElement.lang = cfg.lang.toLowerCase();
    document.title = S.title;
    $('title').textContent = S.title;
    if (annotator) await next();
    else renderStart();
  })();
})();
