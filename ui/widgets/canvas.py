"""Interactive pieces of the page built on ``gr.HTML`` (templates + a few lines of JavaScript).

Why ``gr.HTML``: Gradio 6.31's ``gr.Image.select`` reports a click's pixel but has no drag and
no right-click, and ``gr.ImageEditor`` paints strokes rather than reporting a box. ``gr.HTML``
with ``js_on_load`` is Gradio's documented way to build custom components: the script sees the
component's ``element`` and ``props`` and calls ``trigger(name, data)``, which fires the Python
listener registered as ``component.<name>(fn, ...)`` with ``data`` in ``gr.EventData``.

* ``PromptCanvas``: the image with masks. A click (no movement) fires ``point`` with
  original-image pixel coordinates and the mouse button; a drag fires ``box``. Right-click and
  shift-click mean background. A pending marker (or the dragged box) stays visible until the
  server's answer replaces the value, so clicks feel immediate.
  ``PromptCanvas(live=True)`` (the Segment view) is the fast one, in ``canvas.js`` /
  ``canvas.css``: it draws the masks itself, sends clicks, boxes and hover previews to the live
  route (``server.live_route``) instead of firing ``point``/``box``, zooms and pans, and
  fires ``synced`` after drawing each answer (its value: ``values.live_canvas_value``).
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
_LIVE_TEMPLATE = '<div class="pcl-host"></div>'  # never changes: canvas.js owns the DOM


def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")

_CANVAS_HTML = """
${value && value.src ? `
<div class="pc-root" data-render="${value.n}">
  <div class="pc-stage" data-testid="prompt-canvas" style="aspect-ratio: ${value.w} / ${value.h};
       max-width: calc(72vh * ${value.w} / ${value.h});">
    <img class="pc-img" src="${value.src}" alt="${value.alt}" draggable="false">
    <svg class="pc-svg" viewBox="0 0 ${value.w} ${value.h}" preserveAspectRatio="none">
      ${value.box ? `<rect class="pc-box" x="${value.box[0]}" y="${value.box[1]}"
          width="${value.box[2] - value.box[0]}" height="${value.box[3] - value.box[1]}"
          style="stroke: ${value.color}" vector-effect="non-scaling-stroke"></rect>` : ''}
      ${(value.points || []).map(p => `<circle class="pc-pt ${p[2] ? 'fg' : 'bg'}" cx="${p[0]}"
          cy="${p[1]}" r="${value.r}" vector-effect="non-scaling-stroke"></circle>`).join('')}
      <rect class="pc-drag" x="0" y="0" width="0" height="0" vector-effect="non-scaling-stroke"
          style="display: none"></rect>
    </svg>
  </div>
  <div class="pc-hint" data-testid="canvas-hint">${value.hint || ''}</div>
</div>` : `
<div class="pc-empty" data-testid="canvas-empty" data-render="${(value && value.n) || 0}">
  <div class="pc-empty-title">No image yet</div>
  <div>${(value && value.hint) || 'Upload an image or pick an example on the left.'}</div>
</div>`}
"""

_CANVAS_CSS = """
.pc-root { display: flex; flex-direction: column; align-items: center; gap: 6px; }
.pc-stage { position: relative; width: 100%; margin: 0 auto; cursor: crosshair;
  touch-action: none; user-select: none; border-radius: 6px; overflow: hidden;
  box-shadow: 0 1px 4px rgba(0,0,0,.25); }
.pc-img { display: block; width: 100%; height: 100%; pointer-events: none; }
.pc-svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.pc-pt { stroke: #fff; stroke-width: 2; }
.pc-pt.fg { fill: #16a34a; }
.pc-pt.bg { fill: #dc2626; }
.pc-pt.pending { fill: rgba(255,255,255,.6); stroke: #111; animation: pc-pulse .8s infinite; }
.pc-box { fill: none; stroke-width: 2.5; stroke-dasharray: 8 4; }
.pc-drag { fill: rgba(255,255,255,.12); stroke: #fff; stroke-width: 2; stroke-dasharray: 6 4; }
.pc-hint { font-size: .9em; opacity: .8; min-height: 1.3em; text-align: center; }
.pc-empty { display: flex; flex-direction: column; align-items: center; justify-content: center;
  min-height: 360px; border: 2px dashed var(--border-color-primary); border-radius: 8px;
  opacity: .75; gap: 6px; text-align: center; padding: 16px; }
.pc-empty-title { font-weight: 600; font-size: 1.1em; }
@keyframes pc-pulse { 50% { opacity: .35; } }
"""

_CANVAS_JS = """
const MIN_DRAG = 6;
let drag = null;
const imagePoint = (stage, event) => {
  const r = stage.getBoundingClientRect();
  const v = props.value;
  const fx = Math.min(Math.max((event.clientX - r.left) / r.width, 0), 0.99999);
  const fy = Math.min(Math.max((event.clientY - r.top) / r.height, 0), 0.99999);
  return [fx * v.w, fy * v.h];
};
const busy = (stage, text) => {
  const hint = element.querySelector('.pc-hint');
  if (hint) hint.textContent = text;
};
element.addEventListener('contextmenu', (event) => {
  if (event.target.closest('.pc-stage')) event.preventDefault();
});
element.addEventListener('pointerdown', (event) => {
  const stage = event.target.closest('.pc-stage');
  if (!stage || !props.value || !props.value.src) return;
  if (event.button !== 0 && event.button !== 2) return;
  event.preventDefault();
  const [x, y] = imagePoint(stage, event);
  drag = {stage, x0: x, y0: y, sx: event.clientX, sy: event.clientY, button: event.button,
          shift: event.shiftKey, moved: false};
  stage.setPointerCapture(event.pointerId);
});
element.addEventListener('pointermove', (event) => {
  if (!drag) return;
  if (Math.hypot(event.clientX - drag.sx, event.clientY - drag.sy) >= MIN_DRAG) drag.moved = true;
  if (!drag.moved || drag.button !== 0) return;
  const [x, y] = imagePoint(drag.stage, event);
  const rect = drag.stage.querySelector('.pc-drag');
  rect.setAttribute('x', Math.min(x, drag.x0));
  rect.setAttribute('y', Math.min(y, drag.y0));
  rect.setAttribute('width', Math.abs(x - drag.x0));
  rect.setAttribute('height', Math.abs(y - drag.y0));
  rect.style.display = '';
});
element.addEventListener('pointerup', (event) => {
  if (!drag) return;
  const d = drag;
  drag = null;
  const [x, y] = imagePoint(d.stage, event);
  if (d.moved && d.button === 0) {
    busy(d.stage, 'Segmenting the box…');
    trigger('box', {box: [d.x0, d.y0, x, y]});
  } else if (!d.moved) {
    const svg = d.stage.querySelector('.pc-svg');
    const dot = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    dot.setAttribute('class', 'pc-pt pending');
    dot.setAttribute('cx', d.x0);
    dot.setAttribute('cy', d.y0);
    dot.setAttribute('r', props.value.r);
    svg.appendChild(dot);
    busy(d.stage, 'Segmenting…');
    trigger('point', {x: d.x0, y: d.y0, button: d.button, shift: d.shift});
  }
});
element.addEventListener('pointercancel', () => { drag = null; });
"""

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
    """The image to click on (see the module docstring).

    ``live=False``: ``point`` and ``box`` events through Gradio's queue (the Compare view).
    ``live=True``: clicks go to the live route; ``synced`` fires after each answer is drawn.
    """

    def __init__(self, value: dict[str, Any] | None = None, live: bool = False,
                 **kwargs: Any) -> None:
        if live:
            super().__init__(value=value, html_template=_LIVE_TEMPLATE,
                             css_template=_asset("canvas.css"), js_on_load=_asset("canvas.js"),
                             **kwargs)
        else:
            super().__init__(value=value, html_template=_CANVAS_HTML, css_template=_CANVAS_CSS,
                             js_on_load=_CANVAS_JS, **kwargs)


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
