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
* ``ObjectList``: one row per object (colour, area, score); fires ``pick_object`` and
  ``remove_object``.
* ``CandidateStrip``: the candidate masks when the model is unsure; fires ``choose``.

Values are plain dicts built by ``ui.segment.values``; the templates only display them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

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
    <span class="ol-name">${it.name}</span>
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
.ol-name { font-weight: 600; flex: none; }
.ol-meta { flex: 1; font-size: .85em; opacity: .8; text-align: right; }
.ol-del { border: none; background: none; cursor: pointer; opacity: .6; font-size: 1em; }
.ol-del:hover { opacity: 1; color: #dc2626; }
.ol-empty { opacity: .7; font-size: .9em; }
"""

_OBJECTS_JS = """
element.addEventListener('click', (event) => {
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
</div>` : ''}
"""

_CANDIDATES_CSS = """
.cs-root { display: flex; flex-direction: column; gap: 6px; }
.cs-title { font-size: .9em; opacity: .85; }
.cs-row { display: flex; gap: 8px; flex-wrap: wrap; }
.cs-item { display: flex; flex-direction: column; align-items: center; gap: 4px; padding: 4px;
  border: 2px solid transparent; border-radius: 6px; background: none; cursor: pointer; }
.cs-item img { max-width: 180px; max-height: 140px; border-radius: 4px; }
.cs-item.chosen { border-color: var(--color-accent); }
.cs-item span { font-size: .85em; }
"""

_CANDIDATES_JS = """
element.addEventListener('click', (event) => {
  const item = event.target.closest('.cs-item');
  if (item) trigger('choose', {index: Number(item.dataset.index)});
});
"""


class PromptCanvas(gr.HTML):
    """The image to click on: ``point`` and ``box`` events (see the module docstring)."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
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
