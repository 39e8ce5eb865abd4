"""Display components of the compare view, built on ``gr.HTML`` templates (see
``ui.widgets.canvas``).

* ``CompareCards``: one card per model, side by side: the cut-out over a checkerboard (so
  transparency shows), the mask overlay, and score, area, encode and decode time (plus IoU and
  boundary F-score when a ground truth is loaded). A model that could not answer shows why.
* ``AgreementView``: the pairwise-IoU matrix (cells coloured red to green) next to the
  disagreement image.

Values are plain dicts from ``ui.compare.values``, whose text is already HTML-escaped.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

_CARDS_HTML = """
<div class="cc-root" data-testid="compare-cards">
${value && value.items && value.items.length ? value.items.map(it => `
  <div class="cc-card" data-testid="compare-card" data-model="${it.id}">
    <div class="cc-name">${it.name}</div>
    ${it.error ? `<div class="cc-error" data-testid="compare-error">${it.error}</div>` : ''}
    ${it.waiting && !it.error ? `<div class="cc-wait">${it.waiting}</div>` : ''}
    ${it.cutout ? `
      <div class="cc-pics">
        <figure><div class="cc-checker"><img data-testid="compare-cutout" src="${it.cutout}"
             alt="cut-out by ${it.name}"></div><figcaption>cut-out</figcaption></figure>
        <figure><img data-testid="compare-overlay" src="${it.overlay}"
             alt="mask of ${it.name} over the image"><figcaption>mask overlay</figcaption></figure>
      </div>` : (it.error ? '' : '<div class="cc-none">No mask yet.</div>')}
    <dl class="cc-stats" data-testid="compare-stats">
      <dt>Score</dt><dd data-testid="compare-score">${it.score}</dd>
      <dt>Area</dt><dd>${it.area}</dd>
      <dt>Encode</dt><dd data-testid="compare-encode">${it.encode}</dd>
      <dt>Decode</dt><dd data-testid="compare-decode">${it.decode}</dd>
      ${it.gt ? `<dt>vs truth</dt><dd data-testid="compare-gt">${it.gt}</dd>` : ''}
    </dl>
  </div>`).join('') : `<div class="cc-empty">${(value && value.hint) || ''}</div>`}
</div>
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
.ag-matrix { flex: 1 1 300px; overflow-x: auto; }
.ag-title { font-weight: 600; margin-bottom: 6px; }
.ag-matrix table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.ag-matrix th, .ag-matrix td { padding: 6px 10px; border: 1px solid rgba(0,0,0,.12);
  text-align: center; font-size: .9em; }
.ag-matrix td { color: #111; }
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
                         js_on_load=None, **kwargs)


class AgreementView(gr.HTML):
    """The pairwise-IoU matrix and the disagreement image (display only)."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_AGREEMENT_HTML,
                         css_template=_AGREEMENT_CSS, js_on_load=None, **kwargs)
