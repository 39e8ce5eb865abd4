// The PromptCanvas of every view (ui/widgets/canvas.py). Runs as gr.HTML's js_on_load, with
// `element`, `trigger`, `props` and `watch` in scope. Its value: workbench/canvas.py.
//
// The image and every object's mask are drawn here: the masks on a <canvas> over the <img>,
// prompts in an SVG in image pixels. How a mask looks (palette, fill opacity, outline) comes
// from the value's `spec` (workbench/drawing.py); nothing about it is decided here.
// With `value.live` (Segment), clicks, boxes and hover previews go to the live route
// (server/live_route.py) with the page's session token, not through Gradio's queue; the answer
// is the one changed mask (a cropped 1-bit PNG at display size), and after drawing it the
// canvas fires `synced`, a normal Gradio event that refreshes the side panels. Without it
// (Compare, Video), a click fires `point` and a drag fires `box`; the new value redraws.
// Latency marks for benchmarks/bench_browser.py: window.__samwb_marks.
const MIN_DRAG = 6;
const marks = (window.__samwb_marks = window.__samwb_marks || []);
const base = ((window.gradio_config && window.gradio_config.root) || '').replace(/\/$/, '');
const S = {
  v: null, fit: 1, z: 1, tx: 0, ty: 0, layers: new Map(), opacity: null, outline: false,
  hover: true, queue: [], sending: false, hoverBusy: false, hoverWant: null, hoverSeq: 0,
  drag: null, pan: null, space: false, draws: 0, src: null, inside: false, pointers: new Map(),
  pinch: null, points: [], box: null, ready: false, pending: [], spec: null,
};
element.innerHTML = `
<div class="pcl-root" data-render="0">
  <div class="pcl-empty" data-testid="canvas-empty">
    <div class="pcl-empty-title">No image yet</div><div class="pcl-empty-text"></div></div>
  <div class="pcl-main" hidden>
    <div class="pcl-bar">
      <span class="pcl-name" data-testid="image-name"></span>
      <span class="pcl-tools">
        <button class="pcl-btn pcl-fit" title="Fit the image (F)">Fit</button>
        <button class="pcl-btn pcl-zoom-out" title="Zoom out (wheel)">−</button>
        <button class="pcl-btn pcl-zoom-in" title="Zoom in (wheel)">+</button>
        <label class="pcl-ctl" title="Mask opacity">Opacity
          <input type="range" class="pcl-opacity" min="0" max="100"></label>
        <label class="pcl-ctl" title="Only outline the masks (O)">
          <input type="checkbox" class="pcl-outline"> Outline</label>
        <label class="pcl-ctl pcl-hover-ctl" title="Preview the mask under the pointer (H)">
          <input type="checkbox" class="pcl-hover" checked> Hover preview</label>
        <button class="pcl-btn pcl-help-btn" title="Keyboard shortcuts" aria-label="Help">?</button>
      </span>
    </div>
    <div class="pcl-viewport" data-testid="prompt-canvas">
      <div class="pcl-world">
        <img class="pcl-img" draggable="false" alt="">
        <canvas class="pcl-masks"></canvas>
        <canvas class="pcl-preview"></canvas>
        <svg class="pcl-svg" preserveAspectRatio="none"></svg>
      </div>
      <div class="pcl-busy" hidden><span class="pcl-spinner"></span><span class="pcl-busy-text">
        </span></div>
      <div class="pcl-msg" hidden></div>
      <div class="pcl-help" hidden>
        <b>Mouse</b><br>click: add a point · drag: box · right-click / shift-click: background
        <br>wheel or pinch: zoom at the pointer · space + drag or middle button: pan<br>
        <b>Keys</b>
        <table>
          <tr><td>Ctrl/⌘ Z</td><td>undo</td></tr><tr><td>Ctrl/⌘ Shift Z</td><td>redo</td></tr>
          <tr><td>N</td><td>new object</td></tr>
          <tr><td>B</td><td>toggle foreground / background</td></tr>
          <tr><td>Delete</td><td>delete the object (undo brings it back)</td></tr>
          <tr><td>[ ] or ← →</td><td>previous / next candidate mask</td></tr>
          <tr><td>F · O · H</td><td>fit · outline only · hover preview</td></tr>
          <tr><td>Esc</td><td>cancel a drag, drop the preview</td></tr>
        </table>
      </div>
    </div>
    <div class="pcl-hint" data-testid="canvas-hint"></div>
  </div>
</div>`;
const $ = (sel) => element.querySelector(sel);
const root = $('.pcl-root'), vp = $('.pcl-viewport'), world = $('.pcl-world');
const img = $('.pcl-img'), maskCv = $('.pcl-masks'), prevCv = $('.pcl-preview');
const svg = $('.pcl-svg'), hintEl = $('.pcl-hint'), busyEl = $('.pcl-busy');
const NS = 'http://www.w3.org/2000/svg';

// --- geometry ------------------------------------------------------------------------------
const scale = () => S.fit * S.z;
const k = () => (S.v ? S.v.w / S.v.dw : 1); // image px per display px
function layout() {
  const v = S.v;
  if (!v || !v.src) return;
  const top = vp.getBoundingClientRect().top + window.scrollY;
  const reserve = parseFloat(getComputedStyle(root).getPropertyValue('--pcl-reserve')) || 170;
  const width = vp.clientWidth || 600;
  // Segment fits the window; Compare and Video are read by scrolling past their results, so
  // their canvas keeps a useful size on a laptop screen too
  const maxH = Math.max(v.live ? 220 : 360, window.innerHeight - top - reserve);
  const height = Math.max(160, Math.min(maxH, width * v.dh / v.dw));
  vp.style.height = `${Math.round(height)}px`;
  S.fit = Math.min(width / v.dw, height / v.dh);
  clampView();
}
function clampView() {
  const v = S.v, s = scale(), W = vp.clientWidth, H = vp.clientHeight;
  const w = v.dw * s, h = v.dh * s;
  S.tx = w <= W ? (W - w) / 2 : Math.min(0, Math.max(W - w, S.tx));
  S.ty = h <= H ? (H - h) / 2 : Math.min(0, Math.max(H - h, S.ty));
  world.style.transform = `translate(${S.tx}px, ${S.ty}px) scale(${s})`;
  drawPrompts();
}
function zoomAt(cx, cy, factor) {
  const r = vp.getBoundingClientRect();
  const px = (cx - r.left - S.tx) / scale(), py = (cy - r.top - S.ty) / scale();
  S.z = Math.min(24, Math.max(1, S.z * factor));
  S.tx = cx - r.left - px * scale();
  S.ty = cy - r.top - py * scale();
  clampView();
}
function fitView() { S.z = 1; layout(); }
function imagePoint(event) {
  const r = vp.getBoundingClientRect(), v = S.v;
  const dx = (event.clientX - r.left - S.tx) / scale(), dy = (event.clientY - r.top - S.ty) / scale();
  const x = Math.min(Math.max(dx * k(), 0), v.w - 0.001), y = Math.min(Math.max(dy * k(), 0), v.h - 0.001);
  const inside = dx >= 0 && dy >= 0 && dx < v.dw && dy < v.dh;
  return [x, y, inside];
}

// --- drawing -------------------------------------------------------------------------------
function loadImage(src) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error('mask image did not decode'));
    im.src = src;
  });
}
function canvasOf(w, h) { const c = document.createElement('canvas'); c.width = w; c.height = h; return c; }
async function makeLayer(obj, active) {
  // A layer is the mask's box plus the outline's width on each side (not the whole picture):
  // 200 objects stay 200 small canvases, not 600 picture-sized ones.
  const v = S.v, spec = S.spec, m0 = obj.mask;
  const t = Math.max(1, Math.round(Math.max(v.dw, v.dh) / spec.outline_divisor))
    + (active ? spec.active_extra : 0);
  const x = m0 ? m0.x - t : 0, y = m0 ? m0.y - t : 0;
  const w = m0 ? m0.w + 2 * t : 1, h = m0 ? m0.h + 2 * t : 1;
  const fill = canvasOf(w, h);
  const edge = canvasOf(w, h);
  if (m0) {
    const m = await loadImage(m0.png);
    const c = fill.getContext('2d');
    c.drawImage(m, t, t);
    c.globalCompositeOperation = 'source-in';
    c.fillStyle = obj.color;
    c.fillRect(0, 0, w, h);
    // edge = mask minus its erosion (the mask ANDed with four shifted copies of itself), as
    // workbench/render.py's boundary() draws it; its width is the spec's
    const eroded = canvasOf(w, h), e = eroded.getContext('2d');
    e.drawImage(fill, 0, 0);
    e.globalCompositeOperation = 'destination-in';
    for (const [dx, dy] of [[t, 0], [-t, 0], [0, t], [0, -t]]) e.drawImage(fill, dx, dy);
    const g = edge.getContext('2d');
    g.drawImage(fill, 0, 0);
    g.globalCompositeOperation = 'destination-out';
    g.drawImage(eroded, 0, 0);
  }
  return {id: obj.id, color: obj.color, active, fill, edge, x, y, empty: !m0,
          png: m0 ? m0.png : null, mx: m0 ? m0.x : 0, my: m0 ? m0.y : 0};
}
function sameLayer(layer, obj, active) {
  // An unchanged object keeps its layer: a new value (a pick in the object list) redraws
  // without decoding every mask again.
  const m = obj.mask;
  if (!layer || layer.active !== active || layer.color !== obj.color) return false;
  return m ? layer.png === m.png && layer.mx === m.x && layer.my === m.y : layer.empty;
}
function drawMasks() {
  const v = S.v, c = maskCv.getContext('2d');
  c.clearRect(0, 0, v.dw, v.dh);
  for (const layer of S.layers.values()) {
    if (layer.empty) continue;
    if (!S.outline) { c.globalAlpha = S.opacity; c.drawImage(layer.fill, layer.x, layer.y); }
    c.globalAlpha = 1;
    c.drawImage(layer.edge, layer.x, layer.y);
  }
}
function clearPreview() {
  if (S.v && S.v.dw) prevCv.getContext('2d').clearRect(0, 0, S.v.dw, S.v.dh);
}
async function drawPreview(obj) {
  const layer = await makeLayer(obj, true);
  const c = prevCv.getContext('2d');
  c.clearRect(0, 0, S.v.dw, S.v.dh);
  if (layer.empty) return;
  c.globalAlpha = S.spec.hover_opacity;
  c.drawImage(layer.fill, layer.x, layer.y);
  c.globalAlpha = 0.8;
  c.drawImage(layer.edge, layer.x, layer.y);
  c.globalAlpha = 1;
}
function drawPrompts(pending) {
  const v = S.v;
  if (!v || !v.src) return;
  const r = 6 / scale() * k();
  let out = '';
  if (S.box) {
    const [x0, y0, x1, y1] = S.box;
    const attrs = `x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" vector-effect="non-scaling-stroke"`;
    out += `<rect class="pcl-box-under" ${attrs}></rect><rect class="pcl-box pc-box" ${attrs}></rect>`;
  }
  for (const [x, y, label] of S.points) {
    out += `<circle class="pc-pt ${label ? 'fg' : 'bg'}" cx="${x}" cy="${y}" r="${r}" vector-effect="non-scaling-stroke"></circle>`;
  }
  for (const p of S.queue.concat(pending || [], S.pending)) {
    if (p.kind === 'point') out += `<circle class="pc-pt pending" cx="${p.data.x}" cy="${p.data.y}" r="${r}" vector-effect="non-scaling-stroke"></circle>`;
  }
  out += `<rect class="pcl-drag" vector-effect="non-scaling-stroke" style="display: none"></rect>`;
  svg.innerHTML = out;
}
function setHint(text) { hintEl.innerHTML = text || ''; }
let msgTimer = null;
function showMessage(error) {
  const box = $('.pcl-msg');
  box.textContent = `${error.title || 'Cannot do that'}: ${error.message || ''}`;
  box.hidden = false;
  clearTimeout(msgTimer);
  msgTimer = setTimeout(() => { box.hidden = true; }, 5000);
}
function bump() { S.draws += 1; root.dataset.render = String(S.draws); }
function setBusy(text) {
  busyEl.hidden = !text;
  $('.pcl-busy-text').textContent = text || '';
  root.dataset.busy = text ? '1' : '';
}

// --- values from Gradio ----------------------------------------------------------------------
function takeSpec(spec) {
  if (!spec) return;
  S.spec = spec;
  if (S.opacity === null) { // the person's slider wins over later values
    S.opacity = spec.fill_opacity;
    $('.pcl-opacity').value = String(Math.round(spec.fill_opacity * 100));
  }
}
async function render(v) {
  S.v = v;
  S.pending = [];
  takeSpec(v && v.spec);
  const has = !!(v && v.src);
  $('.pcl-empty').hidden = has;
  $('.pcl-main').hidden = !has;
  if (!has) {
    $('.pcl-empty-text').innerHTML = (v && v.hint) || 'Upload an image or pick an example on the left.';
    S.layers = new Map(); S.queue = []; S.src = null;
    bump();
    return;
  }
  $('.pcl-name').innerHTML = v.name || '';
  $('.pcl-hover-ctl').hidden = !v.live;
  const kept = S.src === v.src ? S.layers : new Map();  // layers of this picture may be reused
  if (S.src !== v.src) {
    S.src = v.src; S.z = 1; S.queue = []; S.hoverWant = null;
    for (const cv of [maskCv, prevCv]) { cv.width = v.dw; cv.height = v.dh; }
    world.style.width = `${v.dw}px`; world.style.height = `${v.dh}px`;
    svg.setAttribute('viewBox', `0 0 ${v.w} ${v.h}`);
    const t0 = performance.now();
    img.onload = () => requestAnimationFrame(() => marks.push({kind: 'image', t0, t1: performance.now()}));
    img.src = v.src.startsWith('data:') ? v.src : base + v.src;
    img.alt = v.alt || '';
  }
  img.alt = v.alt || '';
  layout();
  const layers = new Map();
  for (const obj of v.objects || []) {
    const active = obj.id === v.active, old = kept.get(obj.id);
    layers.set(obj.id, sameLayer(old, obj, active) ? old : await makeLayer(obj, active));
  }
  if (S.v !== v) return; // a newer value came while the masks decoded
  S.layers = layers;
  S.points = v.points || []; S.box = v.box || null;
  clearPreview();
  drawMasks(); drawPrompts(); setHint(v.hint); setBusy(v.busy);
  bump();
  pump();
}
