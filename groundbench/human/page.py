"""The study page: one HTML shell, one script, one style sheet; no inline code, so the
Content-Security-Policy can forbid it. Keyboard first. Pairwise: ``1``/``←`` left, ``2``/``→``
right, ``0``/``↓`` both good, ``x`` both wrong, ``a`` phrase ambiguous. Choose: ``1``…``k``
the map at that position, ``n`` none, ``a`` ambiguous. Click: a mouse click on the object, ``n``
no single object, ``a`` ambiguous. ``Backspace`` goes back."""

from __future__ import annotations

import html

UI_VERSION = "1"

# answer -> (keys, label) per study type; ``A``/``B`` and ``1``…``k`` name screen positions
ANSWERS = {
    "A": (("1", "ArrowLeft"), "left is better"),
    "B": (("2", "ArrowRight"), "right is better"),
    "both_good": (("0", "ArrowDown"), "both good"),
    "both_wrong": (("x",), "both wrong"),
    "ambiguous": (("a",), "phrase ambiguous"),
}


def answers_for(kind: str, k: int) -> dict[str, tuple[tuple[str, ...], str]]:
    """The answers of a study type; ``choose`` answers name a screen position 1…k."""
    if kind == "pairwise":
        return ANSWERS
    if kind == "click":
        return {
            "no_single_object": (("n",), "no single object"),
            "ambiguous": (("a",), "phrase ambiguous"),
        }
    picks = {str(i): ((str(i),), f"map {i}") for i in range(1, k + 1)}
    return picks | {"none": (("n",), "none of them"), "ambiguous": (("a",), "phrase ambiguous")}


_QUESTION = {
    "pairwise": "Which heatmap better marks",
    "choose": "Which heatmap shows",
    "click": "Click the object named by",
}
_KEY_NAMES = {"ArrowLeft": "←", "ArrowRight": "→", "ArrowDown": "↓"}


def page_html(annotator: str, kind: str = "pairwise", k: int = 2) -> bytes:
    """The page shell for ``annotator`` (escaped); the script fills it in."""
    buttons = "".join(
        f'<button type="button" data-answer="{html.escape(a)}" data-keys="{html.escape(" ".join(keys))}">'
        f"<kbd>{html.escape(' / '.join(_KEY_NAMES.get(x, x) for x in keys))}</kbd> {html.escape(label)}</button>"
        for a, (keys, label) in answers_for(kind, k).items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>groundbench study</title><link rel="stylesheet" href="/static/app.css"></head>
<body><header><span id="who">annotator {html.escape(annotator)}</span>
<span id="progress" aria-live="polite">… / …</span></header>
<main><p class="question">{html.escape(_QUESTION[kind])} <q id="phrase"></q>?</p>
<div class="maps" id="maps"></div>
<div id="answers">{buttons}</div>
<p class="hint"><kbd>Backspace</kbd> back · your answers are saved as you go; a reload resumes.</p>
<p id="status" role="status"></p></main>
<script src="/static/app.js"></script></body></html>
""".encode()


APP_CSS = b"""
body{font:16px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{display:flex;justify-content:space-between;padding:.5rem 1rem;background:#222}
main{max-width:1200px;margin:0 auto;padding:1rem}
.question{font-size:1.25rem}
q{font-weight:bold;color:#ffd54f}
.maps{display:flex;gap:2rem;justify-content:center;flex-wrap:wrap}
figure{margin:0;text-align:center}
img{width:min(42vw,480px);max-width:calc(90vw / var(--n, 2));height:auto;image-rendering:auto;border:2px solid #444}
#answers{display:flex;gap:.5rem;justify-content:center;flex-wrap:wrap;margin-top:1rem}
button{font:inherit;padding:.4rem .8rem;background:#333;color:#eee;border:1px solid #666}
button.chosen{background:#2e7d32;border-color:#a5d6a7}
img.clickable{cursor:crosshair}
kbd{border:1px solid #888;border-radius:3px;padding:0 .3rem;font-size:.85em}
.hint,#status{text-align:center;color:#aaa}
"""

APP_JS = b"""'use strict';
const KEYS = {};
for (const b of document.querySelectorAll('button[data-answer]')) {
  for (const k of b.dataset.keys.split(' ')) KEYS[k] = b.dataset.answer;
}
let cur = null, shownAt = 0, busy = false;
const $ = (id) => document.getElementById(id);
function api(path, body) {
  const opts = {credentials: 'same-origin', headers: {'X-Groundbench': '1'}};
  if (body !== undefined) {
    opts.method = 'POST'; opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  return fetch(path, opts).then((r) => {
    if (!r.ok) throw new Error('server said ' + r.status);
    return r.json();
  });
}
function figures(images) {
  const box = $('maps');
  const names = images.length === 2 ? ['left', 'right'] :
    images.length === 1 ? ['image'] : images.map((_, i) => 'map ' + (i + 1));
  box.style.setProperty('--n', String(images.length));
  box.replaceChildren(...images.map((id, i) => {
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = '/img/' + id + '.png'; img.alt = names[i] + ' heatmap';
    img.id = images.length === 2 ? names[i] : 'map' + (i + 1);
    if (cur.type === 'click') {
      img.classList.add('clickable');
      img.addEventListener('click', (ev) => {
        const r = img.getBoundingClientRect();
        answer('click', (ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height);
      });
    }
    const cap = document.createElement('figcaption'); cap.textContent = names[i];
    fig.append(img, cap);
    return fig;
  }));
}
function show(data) {
  cur = data;
  $('progress').textContent = (data.index + 1) + ' / ' + data.total +
    ' (' + data.answered + ' answered)';
  $('phrase').textContent = data.phrase;
  figures(data.images);
  for (const b of document.querySelectorAll('button[data-answer]')) {
    b.classList.toggle('chosen', b.dataset.answer === data.answer);
  }
  $('status').textContent = data.answered === data.total ?
    'All items answered. Thank you! You may still go back and change an answer.' : '';
  shownAt = performance.now();
  busy = false;
}
function load(index) {
  busy = true;
  return api('/api/item' + (index === undefined ? '' : '?i=' + index)).then(show)
    .catch((e) => { busy = false; $('status').textContent = String(e); });
}
function answer(key, x, y) {
  if (!cur || busy) return;
  busy = true;
  const rt = Math.round(performance.now() - shownAt);
  const body = {item: cur.item, index: cur.index, answer: key, rt_ms: rt};
  if (key === 'click') { body.click_x = x; body.click_y = y; }
  api('/api/answer', body)
    .then((r) => load(r.next))
    .catch((e) => { busy = false; $('status').textContent = 'not saved: ' + e; });
}
document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === 'Backspace') {
    ev.preventDefault();
    if (cur && cur.index > 0 && !busy) load(cur.index - 1);
  } else if (KEYS[ev.key]) {
    ev.preventDefault();
    answer(KEYS[ev.key]);
  }
});
for (const b of document.querySelectorAll('button[data-answer]')) {
  b.addEventListener('click', () => answer(b.dataset.answer));
}
load();
"""
