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
  const maxH = Math.max(220, window.innerHeight - top - reserve);
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
  const v = S.v;
  const fill = canvasOf(v.dw, v.dh);
  const edge = canvasOf(v.dw, v.dh);
  if (obj.mask) {
    const m = await loadImage(obj.mask.png);
    const c = fill.getContext('2d');
    c.drawImage(m, obj.mask.x, obj.mask.y);
    c.globalCompositeOperation = 'source-in';
    c.fillStyle = obj.color;
    c.fillRect(0, 0, v.dw, v.dh);
    // edge = mask minus its erosion (the mask ANDed with four shifted copies of itself), as
    // workbench/render.py's boundary() draws it; its width is the spec's
    const spec = S.spec;
    const t = Math.max(1, Math.round(Math.max(v.dw, v.dh) / spec.outline_divisor))
      + (active ? spec.active_extra : 0);
    const eroded = canvasOf(v.dw, v.dh), e = eroded.getContext('2d');
    e.drawImage(fill, 0, 0);
    e.globalCompositeOperation = 'destination-in';
    for (const [dx, dy] of [[t, 0], [-t, 0], [0, t], [0, -t]]) e.drawImage(fill, dx, dy);
    const g = edge.getContext('2d');
    g.drawImage(fill, 0, 0);
    g.globalCompositeOperation = 'destination-out';
    g.drawImage(eroded, 0, 0);
  }
  return {id: obj.id, color: obj.color, active, fill, edge, empty: !obj.mask};
}
function drawMasks() {
  const v = S.v, c = maskCv.getContext('2d');
  c.clearRect(0, 0, v.dw, v.dh);
  for (const layer of S.layers.values()) {
    if (layer.empty) continue;
    if (!S.outline) { c.globalAlpha = S.opacity; c.drawImage(layer.fill, 0, 0); }
    c.globalAlpha = 1;
    c.drawImage(layer.edge, 0, 0);
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
  c.drawImage(layer.fill, 0, 0);
  c.globalAlpha = 0.8;
  c.drawImage(layer.edge, 0, 0);
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
  for (const obj of v.objects || []) layers.set(obj.id, await makeLayer(obj, obj.id === v.active));
  if (S.v !== v) return; // a newer value came while the masks decoded
  S.layers = layers;
  S.points = v.points || []; S.box = v.box || null;
  clearPreview();
  drawMasks(); drawPrompts(); setHint(v.hint); setBusy(v.busy);
  bump();
  pump();
}

// --- the live route --------------------------------------------------------------------------
async function post(op, data) {
  const live = S.v.live;
  const response = await fetch(`${base}${live.url}/${op}`, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({token: live.token, gen: live.gen, ...data}),
  });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!body) body = {ok: false, error: {title: 'Server error', message: `HTTP ${response.status}`}};
  return body;
}
function labelFor(event) {
  const mode = document.querySelector('#click-mode input:checked');
  const background = event.button === 2 || event.shiftKey || (mode && /^Background/.test(mode.value));
  return background ? 0 : 1;
}
function enqueue(kind, data, t0) {
  S.queue.push({kind, data, t0});
  drawPrompts();
  pump();
}
async function pump() {
  if (S.sending || !S.queue.length || !S.v || !S.v.live) return;
  const job = S.queue.shift();
  S.sending = true;
  const gen = S.v.live.gen;
  try {
    const t1 = performance.now();
    const res = await post(job.kind, job.data);
    if (!S.v || !S.v.live || S.v.live.gen !== gen) return;
    if (!res.ok) {
      showMessage(res.error || {});
      drawPrompts();
      return;
    }
    await applyAnswer(res);
    requestAnimationFrame(() => {
      marks.push({kind: job.kind, t0: job.t0, sent: t1, t1: performance.now(),
                  server_ms: res.ms.server, decode_ms: res.ms.decode, reused: res.reused});
    });
    trigger('synced', {rev: res.rev});
  } catch (e) {
    showMessage({title: 'Connection problem', message: String(e.message || e)});
  } finally {
    S.sending = false;
    if (S.queue.length) pump();
  }
}
async function applyAnswer(res) {
  const obj = res.object;
  const layer = await makeLayer(obj, true);
  for (const l of S.layers.values()) if (l.active && l.id !== obj.id) S.layers.set(l.id, l);
  S.layers.set(obj.id, layer);
  S.points = res.points || []; S.box = res.box || null;
  clearPreview();
  drawMasks(); drawPrompts(); setHint(res.hint); setBusy('');
  bump();
}
async function sendHover() {
  const want = S.hoverWant;
  S.hoverWant = null;
  if (!want || !S.v || !S.v.live || !S.hover || S.drag || S.pan || S.sending || S.queue.length) return;
  S.hoverBusy = true;
  const seq = ++S.hoverSeq;
  try {
    const res = await post('hover', {x: want.x, y: want.y, label: want.label, seq});
    if (res.ok && !res.stale && S.inside && S.hover && !S.drag && !S.sending && seq === S.hoverSeq) {
      await drawPreview(res.object);
      requestAnimationFrame(() => marks.push({kind: 'hover', t0: want.t, t1: performance.now(),
                                              server_ms: res.ms.server, x: want.x, y: want.y}));
    }
  } catch (e) { /* a preview may fail quietly */ }
  finally {
    S.hoverBusy = false;
    if (S.hoverWant) sendHover();
  }
}

// --- pointer -------------------------------------------------------------------------------
vp.addEventListener('contextmenu', (event) => event.preventDefault());
vp.addEventListener('wheel', (event) => {
  if (!S.v || !S.v.src) return;
  event.preventDefault();
  zoomAt(event.clientX, event.clientY, Math.exp(-event.deltaY * (event.ctrlKey ? 0.01 : 0.0015)));
}, {passive: false});
vp.addEventListener('pointerdown', (event) => {
  if (!S.v || !S.v.src) return;
  S.pointers.set(event.pointerId, [event.clientX, event.clientY]);
  vp.setPointerCapture(event.pointerId);
  if (S.pointers.size === 2) { // pinch: two fingers zoom, no prompt
    const [a, b] = [...S.pointers.values()];
    S.pinch = {d: Math.hypot(a[0] - b[0], a[1] - b[1])};
    S.drag = null;
    return;
  }
  event.preventDefault();
  clearPreview();
  if (event.button === 1 || (event.button === 0 && S.space)) {
    S.pan = {x: event.clientX, y: event.clientY, tx: S.tx, ty: S.ty};
    vp.classList.add('panning');
    return;
  }
  if (event.button !== 0 && event.button !== 2) return;
  const [x, y, inside] = imagePoint(event);
  if (!inside) return;
  S.drag = {x0: x, y0: y, sx: event.clientX, sy: event.clientY, button: event.button,
            label: labelFor(event), shift: event.shiftKey, moved: false};
});
vp.addEventListener('pointermove', (event) => {
  if (!S.v || !S.v.src) return;
  if (S.pointers.has(event.pointerId)) S.pointers.set(event.pointerId, [event.clientX, event.clientY]);
  if (S.pinch && S.pointers.size === 2) {
    const [a, b] = [...S.pointers.values()];
    const d = Math.hypot(a[0] - b[0], a[1] - b[1]);
    zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, d / Math.max(1, S.pinch.d));
    S.pinch.d = d;
    return;
  }
  if (S.pan) {
    S.tx = S.pan.tx + event.clientX - S.pan.x;
    S.ty = S.pan.ty + event.clientY - S.pan.y;
    clampView();
    return;
  }
  const [x, y, inside] = imagePoint(event);
  if (S.drag) {
    const d = S.drag;
    if (Math.hypot(event.clientX - d.sx, event.clientY - d.sy) >= MIN_DRAG) d.moved = true;
    if (!d.moved || d.button !== 0) return;
    const rect = svg.querySelector('.pcl-drag');
    rect.setAttribute('x', Math.min(x, d.x0)); rect.setAttribute('y', Math.min(y, d.y0));
    rect.setAttribute('width', Math.abs(x - d.x0)); rect.setAttribute('height', Math.abs(y - d.y0));
    rect.style.display = '';
    return;
  }
  S.inside = inside;
  if (!inside) { clearPreview(); S.hoverWant = null; return; }
  if (!S.hover || event.buttons || !S.v.live || S.v.busy) return;
  S.hoverWant = {x, y, label: labelFor(event), t: event.timeStamp || performance.now()};
  if (!S.hoverBusy) sendHover();
});
function endPointer(event) {
  S.pointers.delete(event.pointerId);
  if (S.pinch) { if (S.pointers.size < 2) S.pinch = null; return; }
  if (S.pan) { S.pan = null; vp.classList.remove('panning'); return; }
  const d = S.drag;
  S.drag = null;
  if (!d || event.type === 'pointercancel') { drawPrompts(); return; }
  const t0 = event.timeStamp || performance.now();
  const [x, y] = imagePoint(event);
  if (d.moved && d.button === 0) {
    S.box = [Math.min(d.x0, x), Math.min(d.y0, y), Math.max(d.x0, x), Math.max(d.y0, y)];
    setHint('Segmenting the box…');
    if (S.v.live) enqueue('box', {box: [d.x0, d.y0, x, y]}, t0);
    else { drawPrompts(); trigger('box', {box: [d.x0, d.y0, x, y]}); }
  } else if (!d.moved && !S.v.live) { // Compare, Video: a Gradio event; the new value redraws
    S.pending.push({kind: 'point', data: {x: d.x0, y: d.y0}});
    drawPrompts();
    setHint('Segmenting…');
    trigger('point', {x: d.x0, y: d.y0, button: d.button, shift: d.shift});
  } else if (!d.moved) {
    const cap = (S.v && S.v.max_points) || 64;
    if (S.points.length + S.queue.length >= cap) {
      showMessage({title: 'Too many points', message: `An object takes at most ${cap} points; start a new object (N).`});
      return;
    }
    setHint('Segmenting…');
    enqueue('point', {x: d.x0, y: d.y0, label: d.label}, t0);
  } else {
    drawPrompts();
  }
}
vp.addEventListener('pointerup', endPointer);
vp.addEventListener('pointercancel', endPointer);
vp.addEventListener('pointerleave', () => { S.inside = false; S.hoverWant = null; clearPreview(); });

// --- toolbar and keys ------------------------------------------------------------------------
$('.pcl-fit').addEventListener('click', fitView);
$('.pcl-zoom-in').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(r.left + r.width / 2, r.top + r.height / 2, 1.5); });
$('.pcl-zoom-out').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(r.left + r.width / 2, r.top + r.height / 2, 1 / 1.5); });
$('.pcl-opacity').addEventListener('input', (e) => { S.opacity = Number(e.target.value) / 100; drawMasks(); });
$('.pcl-outline').addEventListener('change', (e) => { S.outline = e.target.checked; drawMasks(); });
$('.pcl-hover').addEventListener('change', (e) => { S.hover = e.target.checked; if (!S.hover) clearPreview(); });
$('.pcl-help-btn').addEventListener('click', () => { const h = $('.pcl-help'); h.hidden = !h.hidden; });
const clickId = (id) => { const b = document.querySelector(id); if (b && !b.disabled) b.click(); };
function toggle(sel) { const box = $(sel); box.checked = !box.checked; box.dispatchEvent(new Event(box.type === 'range' ? 'input' : 'change')); }
function candidate(step) {
  const items = [...document.querySelectorAll('#candidates .cs-item')];
  if (!items.length) return;
  const at = Math.max(0, items.findIndex((i) => i.classList.contains('chosen')));
  items[(at + step + items.length) % items.length].click();
}
document.addEventListener('keydown', (event) => {
  if (!S.v || !S.v.src || !element.offsetParent) return; // not shown (another tab)
  const t = event.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) && t.type !== 'checkbox' && t.type !== 'range' && t.type !== 'radio') return;
  const mod = event.ctrlKey || event.metaKey, key = event.key;
  let done = true;
  // the Segment view's buttons (by id) are only the live canvas's to press
  if (!S.v.live && (mod || /^[nNbBxX\[\]]$|^(Delete|Backspace|ArrowLeft|ArrowRight)$/.test(key))) return;
  if (mod && (key === 'z' || key === 'Z')) clickId(event.shiftKey ? '#redo' : '#undo');
  else if (mod && (key === 'y' || key === 'Y')) clickId('#redo');
  else if (mod || event.altKey) done = false;
  else if (key === ' ') { S.space = true; vp.classList.add('pan-ready'); }
  else if (key === 'n' || key === 'N') clickId('#new-object');
  else if (key === 'b' || key === 'B' || key === 'x' || key === 'X') {
    const other = document.querySelector('#click-mode input:not(:checked)');
    if (other) other.click();
  } else if (key === 'Delete' || key === 'Backspace') clickId('#object-list .ol-row.active .ol-del');
  else if (key === '[' || key === 'ArrowLeft') candidate(-1);
  else if (key === ']' || key === 'ArrowRight') candidate(1);
  else if (key === 'f' || key === 'F') fitView();
  else if (key === 'o' || key === 'O') toggle('.pcl-outline');
  else if (key === 'h' || key === 'H') toggle('.pcl-hover');
  else if (key === '?') $('.pcl-help').hidden = !$('.pcl-help').hidden;
  else if (key === 'Escape') {
    S.drag = null; S.hoverWant = null; clearPreview(); drawPrompts(); $('.pcl-help').hidden = true;
  } else done = false;
  if (done) event.preventDefault();
});
document.addEventListener('keyup', (event) => {
  if (event.key === ' ') { S.space = false; vp.classList.remove('pan-ready'); }
});
new ResizeObserver(() => { if (S.v && S.v.src) layout(); }).observe(vp);
window.addEventListener('resize', () => { if (S.v && S.v.src) layout(); });
watch('value', () => render(props.value));
render(props.value);
