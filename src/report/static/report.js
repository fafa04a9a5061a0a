// The answer browser of the report (as FastChat's qa_browser): pick a language, a question and two
// models; both turns side by side with the judge's grades and pairwise verdicts. Inlined into the
// page; all text goes through textContent.
'use strict';
(() => {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const root = document.getElementById('answer-browser');
  if (!root) return;
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };
  const select = (id, label) => {
    const s = el('select', { id });
    return [s, el('label', { for: id, text: label + ' ' }, s)];
  };
  const fill = (s, options, keep) => {
    const old = keep ? s.value : null;
    s.replaceChildren(...options.map(([v, t]) => el('option', { value: v, text: t })));
    if (old !== null && options.some(([v]) => v === old)) s.value = old;
  };

  if (data.length === 0) {
    root.append(el('p', { class: 'none', text: 'No languages.' }));
    return;
  }
  const [langSel, langLab] = select('browser-lang', 'Language');
  const [qSel, qLab] = select('browser-question', 'Question');
  const [aSel, aLab] = select('browser-model-a', 'Model A');
  const [bSel, bLab] = select('browser-model-b', 'Model B');
  const view = el('div', { id: 'browser-view' });
  root.append(el('div', { class: 'controls' }, langLab, qLab, aLab, bLab), view);
  fill(langSel, data.map((d) => [d.lang, d.lang]));
  const current = () => data.find((d) => d.lang === langSel.value);

  const winnerName = (w, g) => ({ model_1: g.model_1, model_2: g.model_2, tie: 'tie', 'tie (bothbad)': 'both bad', error: 'no verdict' })[w] || w;

  function grades(d, model, qid, turn) {
    const gs = (((d.grades[model] || {})[qid] || {})[String(turn)]) || [];
    if (gs.length === 0) return el('div', { class: 'grade none', text: 'not graded' });
    return el('div', { class: 'grade' }, ...gs.map((g) => el('div', {},
      el('span', { class: 'score', 'data-score': String(g.score), text: g.score === -1 ? 'no score (-1)' : `score ${g.score}` }),
      ` · ${g.judge}`,
      el('details', {}, el('summary', { text: 'judgment' }), el('div', { class: 'text', text: g.judgment })))));
  }

  function games(d, qid, turn, a, b) {
    const gs = (((d.games[qid] || {})[String(turn)]) || []).filter((g) => (g.model_1 === a && g.model_2 === b) || (g.model_1 === b && g.model_2 === a));
    if (gs.length === 0) return el('div', { class: 'games none', text: 'no pairwise judgment of this pair' });
    return el('div', { class: 'games' }, ...gs.map((g) => {
      const w1 = winnerName(g.g1, g), w2 = winnerName(g.g2, g);
      return el('div', { class: 'game' },
        el('span', { text: `${g.judge}: order 1 (${g.model_1} first) → ` }), el('b', { class: 'verdict', text: w1 }),
        el('span', { text: `; order 2 (${g.model_2} first) → ` }), el('b', { class: 'verdict', text: w2 }),
        w1 === w2 ? ' · consistent' : el('span', { class: 'inconsistent', text: ' · inconsistent' }),
        el('details', {}, el('summary', { text: 'judgments' }),
          el('div', { class: 'text', text: `Order 1:\n${g.g1_judgment}\n\nOrder 2:\n${g.g2_judgment}` })));
    }));
  }

  function column(d, model, qid, t) {
    const ans = (d.answers[model] || {})[qid];
    return el('div', { class: 'col', 'data-model': model },
      el('h4', { text: model }),
      el('div', { class: 'text answer', text: ans && ans[t - 1] !== undefined ? ans[t - 1] : '(no answer)' }),
      grades(d, model, qid, t));
  }

  function render() {
    const d = current();
    const q = d.questions.find((x) => x.id === qSel.value);
    const a = aSel.value, b = bSel.value;
    view.replaceChildren();
    if (!q) return;
    view.append(el('div', { class: 'meta', text: `${q.id} · ${q.category}` }));
    q.turns.forEach((text, i) => {
      const t = i + 1;
      const turn = el('div', { class: 'turn', 'data-turn': String(t) }, el('div', { class: 'meta', text: `Turn ${t}` }), el('div', { class: 'question', text }));
      if (q.reference && q.reference[i]) turn.append(el('details', { class: 'reference' }, el('summary', { text: 'reference answer' }), el('div', { class: 'text', text: q.reference[i] })));
      turn.append(el('div', { class: 'columns' }, column(d, a, q.id, t), column(d, b, q.id, t)), games(d, q.id, t, a, b));
      view.append(turn);
    });
  }

  function onLang() {
    const d = current();
    fill(qSel, d.questions.map((q) => [q.id, `${q.id} · ${q.category} · ${q.turns[0].slice(0, 70)}`]), false);
    const models = d.models.map((m) => [m, m]);
    fill(aSel, models, true);
    fill(bSel, models, true);
    if (d.models.length > 1 && aSel.value === bSel.value) bSel.value = d.models.find((m) => m !== aSel.value);
    render();
  }
  langSel.addEventListener('change', onLang);
  for (const s of [qSel, aSel, bSel]) s.addEventListener('change', render);
  onLang();
})();
