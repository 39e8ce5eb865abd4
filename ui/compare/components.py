"""Display components of the compare view, built on ``gr.HTML`` templates (see
``ui.widgets.canvas``).

* ``CompareCards``: one card per model, side by side: the cut-out over a checkerboard (so
  transparency shows), the mask overlay, and score, area, encode and decode time (plus IoU and
  boundary F-score when a ground truth is loaded). A model that could not answer shows why; a
  model still answering is marked, and the card shown on the canvas says so. A click on either
  picture opens it large (a lightbox: Escape, a click or the close button shuts it).
* ``AgreementView``: the pairwise-IoU matrix (cells coloured red to green) next to the
  disagreement image.

Values are plain dicts from ``workbench.compare.values``, whose text is already HTML-escaped.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

_CARDS_HTML = """
<div class="cc-root" data-testid="compare-cards">
${value && value.items && value.items.length ? value.items.map(it => `
  <div class="cc-card${it.pending ? ' cc-pending' : ''}" data-testid="compare-card"
       data-model="${it.id}" data-pending="${it.pending ? 'true' : 'false'}">
    <div class="cc-name">${it.name}${it.on_canvas ? `<span class="cc-tag"
      data-testid="compare-on-canvas">on the canvas</span>` : ''}</div>
    ${it.error ? `<div class="cc-error" data-testid="compare-error">${it.error}</div>` : ''}
    ${it.waiting && !it.error ? `<div class="cc-wait">${it.waiting}</div>` : ''}
    ${it.cutout ? `
      <div class="cc-pics">
        <figure><div class="cc-checker"><img class="cc-zoom" data-testid="compare-cutout"
             src="${it.cutout}" alt="cut-out by ${it.name}" title="Click to enlarge"
             data-caption="${it.name}: cut-out"></div><figcaption>cut-out</figcaption></figure>
        <figure><div class="cc-zoom cc-stack" data-testid="compare-overlay" role="img"
             aria-label="mask of ${it.name} over the image" title="Click to enlarge"
             data-caption="${it.name}: mask overlay"><img src="${it.overlay.base}" alt="">${
             it.overlay.layers.map(l => `<img class="cc-layer" src="${l}" alt="">`).join('')}
             </div><figcaption>mask overlay</figcaption></figure>
      </div>` : (it.error ? '' : '<div class="cc-none">No mask yet.</div>')}
    <dl class="cc-stats" data-testid="compare-stats">
      <dt>Score</dt><dd data-testid="compare-score">${it.score}</dd>
      <dt>Area</dt><dd>${it.area}</dd>
      <dt>Encode</dt><dd data-testid="compare-encode">${it.encode}</dd>
      ${it.wait && it.wait !== '—' ? `<dt title="time spent waiting for the other models'
        encodes (not this model's)">Waited</dt><dd data-testid="compare-wait">${it.wait}</dd>`
        : ''}
      <dt>Decode</dt><dd data-testid="compare-decode">${it.decode}</dd>
      ${it.gt ? `<dt>vs truth</dt><dd data-testid="compare-gt">${it.gt}</dd>` : ''}
    </dl>
  </div>`).join('') : `<div class="cc-empty">${(value && value.hint) || ''}</div>`}
</div>
<div class="cc-lightbox" data-testid="compare-lightbox" hidden role="dialog" aria-modal="true"
     aria-label="Enlarged result">
  <figure><div class="cc-lb-pic"><img data-testid="compare-lightbox-img" alt=""></div>
    <figcaption></figcaption></figure>
  <button type="button" class="cc-lb-close" data-testid="compare-lightbox-close"
          aria-label="Close">✕</button>
</div>
"""

# The lightbox lives in the component's own element (outside the re-rendered cards list it
# would be lost on each update); one listener on the element serves every card.
_CARDS_JS = """
const box = () => element.querySelector('.cc-lightbox');
function close() { const lb = box(); if (lb) { lb.hidden = true; } }
element.addEventListener('click', (event) => {
  const pic = event.target.closest('.cc-zoom');
  const lb = box();
  if (!lb) return;
  if (pic) {
    // A stacked overlay (the image and its mask layers) is shown large the same way: the
    // browser composites it; a plain picture (the cut-out) is one image.
    const holder = lb.querySelector('.cc-lb-pic');
    const layers = pic.classList.contains('cc-stack')
      ? [...pic.querySelectorAll('img')].map(i => i.src) : [pic.src];
    holder.replaceChildren(...layers.map((src, i) => {
      const img = document.createElement('img');
      img.src = src;
      img.alt = i ? '' : (pic.alt || pic.getAttribute('aria-label') || '');
      if (i) { img.className = 'cc-layer'; } else { img.dataset.testid = 'compare-lightbox-img'; }
      return img;
    }));
    holder.classList.add('cc-stack');
    holder.classList.toggle('cc-checker', !!pic.closest('.cc-checker'));
    lb.querySelector('figcaption').textContent = pic.dataset.caption || '';
    lb.hidden = false;
    lb.querySelector('.cc-lb-close').focus();
  } else if (event.target.closest('.cc-lightbox')) {
    close();
  }
});
document.addEventListener('keydown', (event) => { if (event.key === 'Escape') close(); });
"""

_CARDS_CSS = """
.cc-root { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
.cc-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px;
  display: flex; flex-direction: column; gap: 8px; background: var(--background-fill-primary); }
.cc-name { font-weight: 700; }
.cc-pics { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; }
.cc-pics figure { margin: 0; display: flex; flex-direction: column; gap: 2px; }
.cc-pics img { width: 100%; display: block; border-radius: 4px; }
.cc-stack { position: relative; }
.cc-stack img.cc-layer { position: absolute; inset: 0; width: 100%; height: 100%; }
.cc-pics figcaption { font-size: .75em; opacity: .7; text-align: center; }
.cc-checker { border-radius: 4px; background-color: #fff;
  background-image: linear-gradient(45deg, #d4d4d4 25%, transparent 25%),
    linear-gradient(-45deg, #d4d4d4 25%, transparent 25%),
    linear-gradient(45deg, transparent 75%, #d4d4d4 75%),
    linear-gradient(-45deg, transparent 75%, #d4d4d4 75%);
  background-size: 14px 14px; background-position: 0 0, 0 7px, 7px -7px, -7px 0; }
.cc-stats { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0;
  font-size: .9em; }
.cc-stats dt { opacity: .7; }
.cc-stats dd { margin: 0; font-variant-numeric: tabular-nums; }
.cc-error { color: #b91c1c; background: rgba(220, 38, 38, .08); border-radius: 6px;
  padding: 6px 8px; font-size: .9em; }
.cc-wait { font-size: .9em; opacity: .85; }
.cc-none, .cc-empty { opacity: .7; font-size: .9em; }
.cc-empty { grid-column: 1 / -1; }
.cc-pending .cc-pics { opacity: .45; }
.cc-tag { margin-left: 8px; font-size: .75em; font-weight: 600; padding: 1px 7px;
  border-radius: 999px; background: var(--color-accent-soft); color: var(--color-accent);
  vertical-align: middle; }
.cc-zoom { cursor: zoom-in; }
.cc-lightbox { position: fixed; inset: 0; z-index: 1000; background: rgb(12 12 16 / 88%);
  display: flex; align-items: center; justify-content: center; cursor: zoom-out; }
.cc-lightbox[hidden] { display: none; }
.cc-lightbox figure { margin: 0; display: flex; flex-direction: column; align-items: center;
  gap: 8px; }
.cc-lb-pic { border-radius: 6px; overflow: hidden; line-height: 0; }
.cc-lb-pic.cc-stack img.cc-layer { min-width: 0; }
.cc-lightbox img { display: block; max-width: 92vw; max-height: 84vh;
  min-width: min(880px, 92vw); object-fit: contain; }
.cc-lightbox figcaption { color: #fff; font-size: .95em; background: rgb(0 0 0 / 60%);
  padding: 3px 12px; border-radius: 999px; }
.cc-lb-close { position: absolute; top: 14px; right: 18px; width: 40px; height: 40px;
  border-radius: 50%; border: none; background: rgba(255, 255, 255, .9); color: #111;
  font-size: 20px; cursor: pointer; }
"""

_AGREEMENT_HTML = """
${value && value.ready ? `
<div class="ag-root">
  <div class="ag-matrix">
    <div class="ag-title">Pairwise IoU between the models' masks</div>
    <table data-testid="agreement-matrix">
      <thead><tr><th></th>${value.labels.map((l, i) => `<th title="${value.titles[i]}">${l}</th>`
      ).join('')}</tr></thead>
      <tbody>${value.rows.map(r => `<tr><th title="${r.title}">${r.name}</th>${r.cells.map(c => `
        <td class="${c.diag ? 'diag' : ''}" style="background: ${c.color}">${c.text}</td>`
      ).join('')}</tr>`).join('')}</tbody>
    </table>
  </div>
  <figure class="ag-figure">
    <img data-testid="disagreement" src="${value.image}" alt="where the models disagree">
    <figcaption>${value.legend}</figcaption>
  </figure>
</div>` : `<div class="ag-empty">${(value && value.hint) || ''}</div>`}
"""

_AGREEMENT_CSS = """
.ag-root { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.ag-matrix { flex: 1 1 420px; overflow-x: auto; }
.ag-title { font-weight: 600; margin-bottom: 6px; }
.ag-matrix table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.ag-matrix th, .ag-matrix td { padding: 6px 10px; border: 1px solid rgba(0,0,0,.12);
  text-align: center; font-size: .9em; }
.ag-matrix td { color: #111; }
.ag-matrix thead th { min-width: 84px; max-width: 130px; font-weight: 600;
  vertical-align: bottom; }
.ag-matrix tbody th { text-align: left; min-width: 120px; max-width: 200px; font-weight: 600; }
.ag-matrix td.diag { opacity: .55; }
.ag-figure { flex: 2 1 360px; margin: 0; }
.ag-figure img { width: 100%; border-radius: 6px; display: block; }
.ag-figure figcaption { font-size: .85em; opacity: .8; margin-top: 4px; }
.ag-empty { opacity: .7; font-size: .9em; }
"""


class CompareCards(gr.HTML):
    """The per-model result cards (display only)."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_CARDS_HTML, css_template=_CARDS_CSS,
                         js_on_load=_CARDS_JS, **kwargs)


class AgreementView(gr.HTML):
    """The pairwise-IoU matrix and the disagreement image (display only)."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_AGREEMENT_HTML,
                         css_template=_AGREEMENT_CSS, js_on_load=None, **kwargs)
