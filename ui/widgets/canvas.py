"""Interactive pieces of the page built on ``gr.HTML`` (templates + a few lines of JavaScript).

Why ``gr.HTML``: Gradio 6.31's ``gr.Image.select`` reports a click's pixel but has no drag and
no right-click, and ``gr.ImageEditor`` paints strokes rather than reporting a box. ``gr.HTML``
with ``js_on_load`` is Gradio's documented way to build custom components: the script sees the
component's ``element`` and ``props`` and calls ``trigger(name, data)``, which fires the Python
listener registered as ``component.<name>(fn, ...)`` with ``data`` in ``gr.EventData``.

* ``PromptCanvas``: the image with masks, one browser canvas for every view (``canvas.js``,
  ``canvas_edit.js`` for brush, eraser and polygon, ``canvas_input.js``, ``canvas.css``).
  It draws the masks itself, as the value's drawing spec says
  (``workbench.drawing``), zooms and pans. Its value is ``workbench.canvas.CanvasView``: with
  ``live`` (the Segment view) clicks, boxes and hover previews go to the live route
  (``server.live_route``) and ``synced`` fires after each answer is drawn; without it (Compare,
  Video) a click (no movement) fires ``point`` with original-image pixel coordinates, the
  mouse button and shift, and a drag fires ``box``. Right-click and shift-click mean
  background. A pending marker (or the dragged box) stays until the next value replaces it.
* ``ObjectList``: one row per object (colour, name, area, score); fires ``pick_object``,
  ``remove_object`` and (double-click the name, or the pencil) ``rename_object``.
* ``CandidateStrip``: the candidate masks when the model is unsure; fires ``choose``.

Values are plain dicts built by ``workbench.segment.values``; the templates only display them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
_TEMPLATE = '<div class="pcl-host"></div>'  # never changes: canvas.js owns the DOM


def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")

_OBJECTS_HTML = """
<div class="ol-root" data-testid="object-list">
${value && value.items && value.items.length ? value.items.map(it => `
  <div class="ol-row ${it.active ? 'active' : ''}" data-id="${it.id}" role="button" tabindex="0"
       title="Click to select this object; the next clicks refine it">
    <span class="ol-swatch" style="background: ${it.color}"></span>
    <span class="ol-name" title="Double-click to rename">${it.name}</span>
    <button class="ol-ren" data-id="${it.id}" title="Rename ${it.name}"
            aria-label="Rename ${it.name}">✎</button>
    <span class="ol-meta">${it.meta}</span>
    <button class="ol-del" data-id="${it.id}" title="Delete ${it.name}"
            aria-label="Delete ${it.name}">✕</button>
  </div>`).join('') : '<div class="ol-empty">No objects yet.</div>'}
</div>
"""

_OBJECTS_CSS = """
.ol-root { display: flex; flex-direction: column; gap: 4px; }
.ol-row { display: flex; align-items: center; gap: 8px; padding: 6px 8px; border-radius: 6px;
  border: 1px solid var(--border-color-primary); cursor: pointer; }
.ol-row.active { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent);
  background: var(--background-fill-secondary); }
.ol-swatch { width: 14px; height: 14px; border-radius: 3px; flex: none; }
.ol-name { font-weight: 600; flex: 0 1 auto; min-width: 0; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; max-width: 9em; }
.ol-meta { flex: 1; font-size: .8em; opacity: .8; text-align: right; line-height: 1.25; }
.ol-del { border: none; background: none; cursor: pointer; opacity: .6; font-size: 1em; }
.ol-del:hover { opacity: 1; color: #dc2626; }
.ol-ren { border: none !important; background: none !important; box-shadow: none !important;
  cursor: pointer; opacity: 0; font-size: .9em; padding: 0 2px !important; min-width: 0; }
.ol-row:hover .ol-ren, .ol-ren:focus { opacity: .6; }
.ol-ren:hover { opacity: 1; }
.ol-edit { flex: 1; min-width: 0; font: inherit; padding: 1px 4px; }
.ol-empty { opacity: .7; font-size: .9em; }
"""

_OBJECTS_JS = """
const rename = (row) => {
  const name = row.querySelector('.ol-name');
  if (!name || row.querySelector('.ol-edit')) return;
  const input = document.createElement('input');
  input.className = 'ol-edit';
  input.value = name.textContent;
  input.maxLength = 60;
  input.setAttribute('aria-label', 'Object name');
  name.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save) trigger('rename_object', {id: Number(row.dataset.id), name: input.value});
    else input.replaceWith(name);
  };
  input.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  input.addEventListener('click', (e) => e.stopPropagation());
};
element.addEventListener('dblclick', (event) => {
  const row = event.target.closest('.ol-row');
  if (row && event.target.closest('.ol-name')) rename(row);
});
element.addEventListener('click', (event) => {
  const ren = event.target.closest('.ol-ren');
  if (ren) {
    event.stopPropagation();
    rename(ren.closest('.ol-row'));
    return;
  }
  const del = event.target.closest('.ol-del');
  if (del) {
    event.stopPropagation();
    trigger('remove_object', {id: Number(del.dataset.id)});
    return;
  }
  const row = event.target.closest('.ol-row');
  if (row) trigger('pick_object', {id: Number(row.dataset.id)});
});
"""

_CANDIDATES_HTML = """
${value && value.items && value.items.length ? `
<div class="cs-root" data-testid="candidates">
  <div class="cs-title">${value.title}</div>
  <div class="cs-row">
  ${value.items.map((it, i) => `
    <button class="cs-item ${it.chosen ? 'chosen' : ''}" data-index="${i}"
            title="Use this mask">
      <img src="${it.src}" alt="candidate ${i + 1}">
      <span>${it.label}</span>
    </button>`).join('')}
  </div>
</div>` : (value && value.similar ? `<div class="cs-similar" data-testid="candidates-similar">
  The model's ${value.similar} readings of this click agree.
  <button class="cs-show">Show them</button></div>` : '')}
"""

_CANDIDATES_CSS = """
.cs-root { display: flex; flex-direction: row; align-items: center; gap: 10px; }
.cs-title { font-size: .85em; opacity: .85; max-width: 170px; line-height: 1.3; }
.cs-row { display: flex; gap: 8px; flex-wrap: wrap; }
.cs-item { display: flex; flex-direction: column; align-items: center; gap: 2px; padding: 2px;
  border: 2px solid transparent; border-radius: 6px; background: none; cursor: pointer; }
.cs-item img { max-width: 120px; max-height: 60px; border-radius: 4px; }
.cs-similar { font-size: .85em; opacity: .75; }
.cs-similar button { border: none; background: none; color: var(--color-accent);
  cursor: pointer; padding: 0; font: inherit; text-decoration: underline; }
.cs-item.chosen { border-color: var(--color-accent); }
.cs-item span { font-size: .78em; }
"""

_CANDIDATES_JS = """
element.addEventListener('click', (event) => {
  if (event.target.closest('.cs-show')) { trigger('show_all', {}); return; }
  const item = event.target.closest('.cs-item');
  if (item) trigger('choose', {index: Number(item.dataset.index)});
});
"""


class PromptCanvas(gr.HTML):
    """The image to click on (see the module docstring): ``point``, ``box`` and ``synced``."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_TEMPLATE,
                         css_template=_asset("canvas.css"),
                         js_on_load="\n".join(_asset(name) for name in (
                             "canvas.js", "canvas_edit.js", "canvas_input.js")),
                         **kwargs)


class ObjectList(gr.HTML):
    """The objects on the image: ``pick_object`` and ``remove_object`` events."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_OBJECTS_HTML, css_template=_OBJECTS_CSS,
                         js_on_load=_OBJECTS_JS, **kwargs)


class CandidateStrip(gr.HTML):
    """Candidate masks to choose from: ``choose`` event with the candidate's index."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_CANDIDATES_HTML,
                         css_template=_CANDIDATES_CSS, js_on_load=_CANDIDATES_JS, **kwargs)
