// The PromptCanvas of every view (ui/widgets/canvas.py). Runs as gr.HTML's js_on_load, with
// `element`, `trigger`, `props` and `watch` in scope. Its value: workbench/canvas.py.
//
// The image and every object's mask are drawn here: the masks on a <canvas> over the <img>,
// prompts in an SVG in image pixels. How a mask looks (palette, fill opacity) comes from the
// value's `spec` (workbench/drawing.py), its outlines from the payload (workbench/segment/
// masks.py); nothing about it is decided here.
// With `value.live` (Segment), clicks, boxes and hover previews go to the live route
// (server/live_route.py) with the page's session token, not through Gradio's queue; the answer
// is the one changed mask (a cropped palette PNG at display size, its outlines marked), and once
// the answers pause the canvas fires `synced`, a normal Gradio event that refreshes the side
// panels. Without it (Compare, Video), a click fires `point` and a drag fires `box`; the new
// value redraws.
// Brush, eraser and polygon editing of the active mask (Segment only): canvas_edit.js.
// Latency marks for benchmarks/bench_browser.py: window.__samwb_marks.
const MIN_DRAG = 6;
const marks = (window.__samwb_marks = window.__samwb_marks || []);
const base = ((window.gradio_config && window.gradio_config.root) || '').replace(/\/$/, '');
const S = {
  v: null, fit: 1, z: 1, tx: 0, ty: 0, layers: new Map(), opacity: null, outline: false,
  hover: true, queue: [], sending: false, hoverBusy: false, hoverWant: null, hoverSeq: 0,
  realAt: 0, drag: null, pan: null, space: false, draws: 0, src: null, inside: false, pointers: new Map(),
  pinch: null, points: [], box: null, ready: false, pending: [], spec: null, props: [],
  tool: 'prompt', brushR: 0, stroke: null, poly: null, polyDrag: null, cursor: null,
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
        <span class="pcl-edit-tools" hidden>
          <button class="pcl-btn pcl-tool on" data-tool="prompt" title="Click and box prompts (V)">Prompt</button>
          <button class="pcl-btn pcl-tool" data-tool="brush" title="Paint the mask (P); size: [ ] or Alt + wheel">Brush</button>
          <button class="pcl-btn pcl-tool" data-tool="erase" title="Erase from the mask (E); size: [ ] or Alt + wheel">Eraser</button>
          <button class="pcl-btn pcl-tool" data-tool="polygon" title="Edit the mask's outline (G)">Polygon</button>
          <span class="pcl-size" data-testid="brush-size" hidden></span>
          <button class="pcl-btn pcl-poly-apply" title="Apply the polygon (Enter)" hidden>Apply</button>
          <button class="pcl-btn pcl-poly-cancel" title="Leave the polygon unchanged (Esc)" hidden>Cancel</button>
        </span>
        <button class="pcl-btn pcl-help-btn" title="Keyboard shortcuts" aria-label="Help">?</button>
      </span>
    </div>
    <div class="pcl-review" data-testid="canvas-review" hidden>
      <span class="pcl-review-text"></span>
      <button class="pcl-btn pcl-keep-sel" title="Keep the selected proposals as objects (Enter)">Keep selected</button>
      <button class="pcl-btn pcl-keep-all" title="Keep every proposal shown">Keep all</button>
      <button class="pcl-btn pcl-discard" title="Drop the proposals and go back to clicking points">Discard</button>
    </div>
    <div class="pcl-viewport" data-testid="prompt-canvas">
      <div class="pcl-world">
        <img class="pcl-img" draggable="false" alt="">
        <canvas class="pcl-masks"></canvas>
        <canvas class="pcl-props"></canvas>
        <canvas class="pcl-preview"></canvas>
        <canvas class="pcl-paint"></canvas>
        <svg class="pcl-svg" preserveAspectRatio="none"></svg>
        <svg class="pcl-edit-svg" preserveAspectRatio="none"></svg>
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
          <tr><td>V · P · E · G</td><td>prompts · brush · eraser · polygon</td></tr>
          <tr><td>[ ] · Alt wheel</td><td>brush / eraser size (brush or eraser on)</td></tr>
          <tr><td>polygon</td><td>drag a vertex · double-click an edge: add · right- or
            Alt-click a vertex: remove · Enter: apply · Esc: cancel</td></tr>
          <tr><td>F · O · H</td><td>fit · outline only · hover preview</td></tr>
          <tr><td>Esc</td><td>cancel a drag, drop the preview</td></tr>
          <tr><td>Enter</td><td>keep the selected proposals (while reviewing)</td></tr>
        </table>
      </div>
    </div>
    <div class="pcl-hint" data-testid="canvas-hint"></div>
  </div>
</div>`;
const $ = (sel) => element.querySelector(sel);
const root = $('.pcl-root'), vp = $('.pcl-viewport'), world = $('.pcl-world');
const img = $('.pcl-img'), maskCv = $('.pcl-masks'), prevCv = $('.pcl-preview');
const propCv = $('.pcl-props');
const paintCv = $('.pcl-paint'), editSvg = $('.pcl-edit-svg');
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
function canvasOf(w, h) { const c = document.createElement('canvas'); c.width = w; c.height = h; return c; }
// A mask payload is a palette PNG whose indices say inside / on an outline (the server draws
// both outlines, as workbench/render.py's boundary(): workbench/segment/masks.py). A layer is
// two bitmaps decoded from the same bytes with palettes of our own: the fill (every mask index
// in the object's colour) and the edge (the indices of the outline wanted). The browser's
// image decoder does the work, off the main thread; nothing is composited here.
const FILL_INDICES = [1, 2, 3, 4], EDGE_PLAIN = [2, 4], EDGE_ACTIVE = [3, 4];
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();
function crc32(bytes, start, end) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngBytes(dataUrl) {
  const bin = atob(dataUrl.slice(dataUrl.indexOf(',') + 1));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}
function hexRgb(hex) {
  const n = parseInt(String(hex || '#ffffff').slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
// The payload's bytes with the colour on `shown` indices (opaque) and every other index
// transparent; PLTE and tRNS are rewritten in place (the server writes all five entries).
function recoloured(bytes, rgb, shown) {
  const out = bytes.slice(), view = new DataView(out.buffer);
  for (let at = 8; at + 12 <= out.length;) {
    const length = view.getUint32(at), type = String.fromCharCode(...out.subarray(at + 4, at + 8));
    const data = at + 8;
    if (type === 'PLTE') for (let i = 1; i * 3 < length; i++) out.set(rgb, data + 3 * i);
    if (type === 'tRNS') for (let i = 0; i < length; i++) out[data + i] = shown.includes(i) ? 255 : 0;
    if (type === 'PLTE' || type === 'tRNS') view.setUint32(data + length, crc32(out, at + 4, data + length));
    if (type === 'IDAT') break;
    at = data + length + 4;
  }
  return createImageBitmap(new Blob([out], {type: 'image/png'}));
}
async function makeLayer(obj, active) {
  const m0 = obj.mask;
  const layer = {id: obj.id, color: obj.color, active, empty: !m0, png: m0 ? m0.png : null,
                 x: m0 ? m0.x : 0, y: m0 ? m0.y : 0, w: m0 ? m0.w : 0, h: m0 ? m0.h : 0};
  if (!m0) return layer;
  const bytes = pngBytes(m0.png), rgb = hexRgb(obj.color);
  [layer.fill, layer.edge] = await Promise.all([
    recoloured(bytes, rgb, FILL_INDICES), recoloured(bytes, rgb, active ? EDGE_ACTIVE : EDGE_PLAIN)]);
  return layer;
}
const pixelProbe = canvasOf(1, 1).getContext('2d', {willReadFrequently: true});
function coveredAt(layer, x, y) { // is display pixel (x, y) inside this layer's mask?
  pixelProbe.clearRect(0, 0, 1, 1);
  pixelProbe.drawImage(layer.fill, layer.x - x, layer.y - y);
  return pixelProbe.getImageData(0, 0, 1, 1).data[3] > 0;
}
function sameLayer(layer, obj, active) {
  // An unchanged object keeps its layer: a new value (a pick in the object list) redraws
  // without decoding every mask again.
  const m = obj.mask;
  if (!layer || layer.active !== active || layer.color !== obj.color) return false;
  return m ? layer.png === m.png && layer.x === m.x && layer.y === m.y : layer.empty;
}
function drawLayer(c, layer) {
  if (!S.outline) { c.globalAlpha = S.opacity; c.drawImage(layer.fill, layer.x, layer.y); }
  c.globalAlpha = 1;
  c.drawImage(layer.edge, layer.x, layer.y);
}
// An answer changes the active layer only, so the layers under it and over it are each
// composited once into a canvas of their own (a stack) and reused while they, the opacity and
// the outline setting stay the same: after a "Keep all" of 200 objects a click draws two stacks
// and one layer instead of two bitmaps an object. A stack costs one full-canvas copy, so a few
// small layers (under STACK_MIN_LAYERS, their boxes covering less than STACK_MIN_AREA of the
// canvas) are drawn directly. The root's data-stacks="off" draws every layer directly.
const STACK_MIN_LAYERS = 8, STACK_MIN_AREA = 0.5;
const stacks = {below: {cv: null, key: null}, above: {cv: null, key: null}};
function dropStacks() { for (const slot of Object.values(stacks)) { slot.cv = null; slot.key = null; } }
function stacked(slot, layers) {
  const v = S.v, key = [S.opacity, S.outline, v.dw, v.dh, ...layers];
  if (!slot.key || slot.key.length !== key.length || slot.key.some((x, i) => x !== key[i])) {
    if (!slot.cv || slot.cv.width !== v.dw || slot.cv.height !== v.dh) slot.cv = canvasOf(v.dw, v.dh);
    const c = slot.cv.getContext('2d');
    c.clearRect(0, 0, v.dw, v.dh);
    for (const layer of layers) drawLayer(c, layer);
    slot.key = key;
  }
  return slot.cv;
}
function drawMasks() {
  const v = S.v, c = maskCv.getContext('2d');
  c.clearRect(0, 0, v.dw, v.dh);
  const layers = [...S.layers.values()].filter((l) => !l.empty);
  const at = layers.findIndex((l) => l.active);
  const parts = at < 0 ? [[stacks.below, layers]]
    : [[stacks.below, layers.slice(0, at)], [null, [layers[at]]], [stacks.above, layers.slice(at + 1)]];
  const useStacks = root.dataset.stacks !== 'off', least = STACK_MIN_AREA * v.dw * v.dh;
  for (const [slot, part] of parts) {
    if (slot && useStacks && (part.length >= STACK_MIN_LAYERS
                              || part.reduce((sum, l) => sum + l.w * l.h, 0) >= least)) {
      c.globalAlpha = 1;
      c.drawImage(stacked(slot, part), 0, 0);
    } else for (const layer of part) drawLayer(c, layer);
  }
}
// Proposals under review (value.proposals): every one outlined in its colour, the selected
// ones filled, the others lightly tinted so their extent shows; labels are SVG text.
function drawProposals() {
  const v = S.v, c = propCv.getContext('2d');
  c.clearRect(0, 0, v.dw, v.dh);
  for (const p of S.props) {
    if (p.layer.empty) continue;
    c.globalAlpha = p.selected ? S.opacity : 0.12;
    c.drawImage(p.layer.fill, p.layer.x, p.layer.y);
    c.globalAlpha = 1;
    c.drawImage(p.layer.edge, p.layer.x, p.layer.y);
  }
  const bar = $('.pcl-review');
  bar.hidden = !S.props.length;
  if (S.props.length) {
    const chosen = S.props.filter((p) => p.selected).length;
    $('.pcl-review-text').textContent = `${S.props.length} proposal${S.props.length === 1 ? '' : 's'} · ${chosen} selected`;
    $('.pcl-keep-sel').disabled = !chosen;
  }
}
// The smallest proposal under an image point (nested proposals: the inner one), or null.
function proposalAt(x, y) {
  const px = Math.floor(x / k()), py = Math.floor(y / k());
  let best = null;
  for (const p of S.props) {
    const m = p.mask;
    if (!m || px < m.x || py < m.y || px >= m.x + m.w || py >= m.y + m.h) continue;
    if (coveredAt(p.layer, px, py) && (!best || m.w * m.h < best.mask.w * best.mask.h)) best = p;
  }
  return best;
}
function clearPreview() {
  if (S.v && S.v.dw) prevCv.getContext('2d').clearRect(0, 0, S.v.dw, S.v.dh);
}
// A hover's payload is sampled coarser than the display (workbench/segment/masks.py's
// HOVER_SIDE): its bitmap is drawn scaled to its place (x, y, w, h in display pixels).
async function drawPreview(obj) {
  const layer = await makeLayer(obj, true);
  const c = prevCv.getContext('2d');
  c.clearRect(0, 0, S.v.dw, S.v.dh);
  if (layer.empty) return;
  c.globalAlpha = S.spec.hover_opacity;
  c.drawImage(layer.fill, layer.x, layer.y, layer.w, layer.h);
  c.globalAlpha = 0.8;
  c.drawImage(layer.edge, layer.x, layer.y, layer.w, layer.h);
  c.globalAlpha = 1;
}
function drawPrompts(pending) {
  const v = S.v;
  if (!v || !v.src) return;
  const r = 6 / scale() * k();
  let out = '';
  const fs = 13 / scale() * k();
  for (const p of S.props) {
    if (!p.mask) continue;
    const x = p.mask.x * k(), y = p.mask.y * k();
    out += `<text class="pcl-prop-label" x="${x + 2 * fs / 13}" y="${y + fs}" font-size="${fs}" style="stroke: ${p.color}; stroke-width: ${3 * fs / 13}">${p.selected ? '✓ ' : ''}${escapeText(p.label)}</text>`;
  }
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
  drawEdit(); // vertex handles and the brush cursor keep their screen size when zooming
}
function escapeText(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}
function setHint(text) { S.objectHint = text || ''; hintEl.innerHTML = S.objectHint; }
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
// The chosen file, shown from the browser's own copy while it uploads (the Segment view's
// canvas, marked by the `pcl-local-upload` class on its block): a value of the image alone,
// with no live route (clicks wait for the server's value, which replaces this one).
let localUrl = null;
function showLocalFile(file) {
  if (!file || !/^image\/(png|jpeg|webp|gif|bmp|avif)$/.test(file.type)) return;
  if (localUrl) URL.revokeObjectURL(localUrl);
  const url = (localUrl = URL.createObjectURL(file));
  const chosenAt = performance.now();
  const probe = new Image();
  probe.onload = () => {
    if (localUrl !== url || S.realAt > chosenAt) return; // the server's value came first
    const w = probe.naturalWidth, h = probe.naturalHeight;
    const fit = Math.min(1, 1280 / Math.max(w, h));
    render({src: url, w, h, dw: Math.max(1, Math.round(w * fit)), dh: Math.max(1, Math.round(h * fit)),
            name: escapeText(file.name), alt: '', objects: [], points: [], box: null,
            hint: 'Uploading the image…', busy: 'Uploading…', local: true});
  };
  probe.src = url;
}
if (element.closest('.pcl-local-upload')) {
  document.addEventListener('change', (event) => {
    const input = event.target;
    if (input && input.type === 'file' && input.closest('#image-upload') && input.files) {
      showLocalFile(input.files[0]);
    }
  }, true);
}
async function render(v) {
  if (v && v.src && !v.local) S.realAt = performance.now();
  S.v = v;
  S.pending = [];
  takeSpec(v && v.spec);
  const has = !!(v && v.src);
  $('.pcl-empty').hidden = has;
  $('.pcl-main').hidden = !has;
  if (!has) {
    $('.pcl-empty-text').innerHTML = (v && v.hint) || 'Upload an image or pick an example on the left.';
    S.layers = new Map(); S.props = []; S.queue = []; S.src = null; dropStacks();
    bump();
    return;
  }
  $('.pcl-name').innerHTML = v.name || '';
  $('.pcl-hover-ctl').hidden = !v.live;
  $('.pcl-edit-tools').hidden = !v.live;
  if (!v.live && S.tool !== 'prompt') setTool('prompt');
  const kept = S.src === v.src ? S.layers : new Map();  // layers of this picture may be reused
  if (S.src !== v.src) {
    S.src = v.src; S.z = 1; S.queue = []; S.hoverWant = null; dropStacks();
    for (const cv of [maskCv, prevCv, propCv, paintCv]) { cv.width = v.dw; cv.height = v.dh; }
    world.style.width = `${v.dw}px`; world.style.height = `${v.dh}px`;
    svg.setAttribute('viewBox', `0 0 ${v.w} ${v.h}`);
    editSvg.setAttribute('viewBox', `0 0 ${v.w} ${v.h}`);
    S.stroke = null; S.poly = null; S.polyDrag = null;
    const t0 = performance.now();
    const kind = v.local ? 'image-local' : 'image';
    img.onload = () => requestAnimationFrame(() => marks.push({kind, t0, t1: performance.now()}));
    img.src = /^(data|blob):/.test(v.src) ? v.src : base + v.src;
    img.alt = v.alt || '';
  }
  img.alt = v.alt || '';
  layout();
  const layers = new Map();
  for (const obj of v.objects || []) {
    const active = obj.id === v.active, old = kept.get(obj.id);
    layers.set(obj.id, sameLayer(old, obj, active) ? old : await makeLayer(obj, active));
  }
  const props = [];
  for (const p of v.proposals || []) {
    const layer = await makeLayer({id: p.index, color: p.color, mask: p.mask}, false);
    props.push({...p, layer});
  }
  if (S.v !== v) return; // a newer value came while the masks decoded
  const reviewing = props.length && !S.props.length;
  S.layers = layers;
  S.props = props;
  if (props.length && S.tool !== 'prompt') setTool('prompt');
  drawProposals();
  // proposals come from a panel further down: bring the image they are drawn on into view
  if (reviewing) vp.scrollIntoView({block: 'nearest', behavior: 'smooth'});
  S.points = v.points || []; S.box = v.box || null;
  clearPreview();
  S.restHint = v.hint;  // the hint to go back to when a click is refused
  drawMasks(); drawPrompts(); setHint(v.hint); setBusy(v.busy);
  bump();
  if (S.tool === 'polygon') refreshOutline(); // an undo or another object: its own outline
  pump();
}
