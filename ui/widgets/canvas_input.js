// The PromptCanvas's input half (ui/widgets/canvas.py joins it after canvas.js, in the same
// js_on_load scope): the live route, pointer, toolbar and keys. canvas.js holds the state,
// the DOM, geometry, drawing and the values from Gradio.

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
  S.epoch = (S.epoch || 0) + 1; // a hover answered after this was asked for an older mask
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
    const got = performance.now();
    if (!S.v || !S.v.live || S.v.live.gen !== gen) return;
    if (!res.ok) {
      showMessage(res.error || {});
      if (job.kind === 'paint' || job.kind === 'polygon') { clearPaint(); drawMasks(); }
      // the object's own hint again, not "Segmenting…" for ever (a refused click, a locked one)
      if (job.kind !== 'outline') setHint(S.restHint || S.v.hint);
      drawPrompts();
      return;
    }
    if (job.kind === 'outline') { takeOutline(res); return; } // draws handles, changes nothing
    await applyAnswer(res);
    const drawn = performance.now();
    // sent/got/drawn split the time: waiting to send, the round trip (the server's part is
    // server_ms), mask decode and compositing, then the frame (bench_browser.py's breakdown)
    requestAnimationFrame(() => {
      marks.push({kind: job.kind, t0: job.t0, sent: t1, got, drawn, t1: performance.now(),
                  server_ms: res.ms.server, decode_ms: res.ms.decode, reused: res.reused});
    });
    scheduleSync(res.rev);
    if (job.kind === 'polygon') refreshOutline(); // go on editing the new mask's outline
  } catch (e) {
    showMessage({title: 'Connection problem', message: String(e.message || e)});
  } finally {
    S.sending = false;
    if (S.queue.length) pump();
  }
}
// The side panels (object list, candidates, downloads, status) refresh through `synced`, a
// Gradio event whose work (the server's panel values, the page re-rendering them) shares the
// cores with the next click's decode. While answers keep coming it waits for a pause of
// SYNC_PAUSE_MS, so quick clicks are never slowed by panels nobody is looking at yet; the last
// answer's panels always follow.
const SYNC_PAUSE_MS = 250;
function scheduleSync(rev) {
  clearTimeout(S.syncTimer);
  S.syncTimer = setTimeout(() => {
    S.syncTimer = null;
    if (S.sending || S.queue.length) scheduleSync(rev); // the next answer will ask again
    else trigger('synced', {rev});
  }, SYNC_PAUSE_MS);
}
async function applyAnswer(res) {
  const obj = res.object;
  const layer = await makeLayer(obj, true);
  for (const l of S.layers.values()) if (l.active && l.id !== obj.id) S.layers.set(l.id, l);
  S.layers.set(obj.id, layer);
  S.points = res.points || []; S.box = res.box || null;
  clearPreview();
  if (!S.stroke && !S.queue.some((j) => j.kind === 'paint')) clearPaint(); // strokes drawn
  S.restHint = res.hint;
  drawMasks(); drawPrompts(); setHint(res.hint); setBusy('');
  bump();
}
// At most 30 hover previews a second: well under the route's per-address limit (--click-rate,
// 40 a second by default), however fast the server answers.
const HOVER_INTERVAL_MS = 34;
async function sendHover() {
  const wait = (S.hoverAt || 0) + HOVER_INTERVAL_MS - performance.now();
  if (wait > 0) {
    if (!S.hoverTimer) S.hoverTimer = setTimeout(() => { S.hoverTimer = null; sendHover(); }, wait);
    return;
  }
  const want = S.hoverWant;
  S.hoverWant = null;
  if (!want || !S.v || !S.v.live || !S.hover || S.drag || S.pan || S.sending || S.queue.length
      || S.props.length) return;
  S.hoverAt = performance.now();
  S.hoverBusy = true;
  const seq = ++S.hoverSeq, epoch = S.epoch;
  try {
    const sent = performance.now();
    const res = await post('hover', {x: want.x, y: want.y, label: want.label, seq});
    const got = performance.now();
    if (res.ok && !res.stale && S.inside && S.hover && !S.drag && !S.sending && seq === S.hoverSeq
        && epoch === S.epoch && !S.queue.length) {
      await drawPreview(res.object);
      const drawn = performance.now();
      requestAnimationFrame(() => marks.push({kind: 'hover', t0: want.t, sent, got, drawn,
                                              t1: performance.now(), server_ms: res.ms.server,
                                              decode_ms: res.ms.decode, x: want.x, y: want.y}));
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
  // Alt + wheel sizes the brush; Ctrl + wheel stays zoom (a touchpad's pinch sends it)
  if (event.altKey && isBrushTool()) { resizeBrush(event.deltaY < 0 ? 1 : -1); return; }
  zoomAt(event.clientX, event.clientY, Math.exp(-event.deltaY * (event.ctrlKey ? 0.01 : 0.0015)));
}, {passive: false});
vp.addEventListener('pointerdown', (event) => {
  if (!S.v || !S.v.src) return;
  S.pointers.set(event.pointerId, [event.clientX, event.clientY]);
  vp.setPointerCapture(event.pointerId);
  if (S.pointers.size === 2) { // pinch: two fingers zoom, no prompt
    const [a, b] = [...S.pointers.values()];
    S.pinch = {d: Math.hypot(a[0] - b[0], a[1] - b[1])};
    S.drag = null; S.polyDrag = null;
    if (S.stroke) cancelStroke(); // a second finger: a pinch, not a stroke
    return;
  }
  event.preventDefault();
  clearPreview();
  if (event.button === 1 || (event.button === 0 && S.space)) {
    S.pan = {x: event.clientX, y: event.clientY, tx: S.tx, ty: S.ty};
    vp.classList.add('panning');
    return;
  }
  if (S.v.live && S.tool !== 'prompt') { editDown(event); return; }
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
  if (S.v.live && S.tool !== 'prompt') { editMove(event); return; }
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
  if (!RAW_HOVER) hoverMove(event, x, y, inside);
});
// Chromium holds continuous events like pointermove until the next animation frame (about
// 8 ms on average at 60 Hz, measured as 5-11 ms p50 between the event and the request for a
// resting hover); pointerrawupdate comes as soon as the pointer moves, so where the browser
// has it (Chromium, in a secure context such as localhost or https) the hover is asked for
// from there. Dragging, panning and the brush stay on pointermove, drawn once a frame.
const RAW_HOVER = 'onpointerrawupdate' in window;
function hoverMove(event, x, y, inside) {
  S.inside = inside;
  if (!inside) { clearPreview(); S.hoverWant = null; return; }
  if (!S.hover || event.buttons || !S.v.live || S.v.busy) return;
  S.hoverWant = {x, y, label: labelFor(event), t: event.timeStamp || performance.now()};
  if (!S.hoverBusy) sendHover();
}
if (RAW_HOVER) vp.addEventListener('pointerrawupdate', (event) => {
  if (!S.v || !S.v.src || S.pinch || S.pan || S.drag || (S.v.live && S.tool !== 'prompt')) return;
  const [x, y, inside] = imagePoint(event);
  hoverMove(event, x, y, inside);
});
function endPointer(event) {
  S.pointers.delete(event.pointerId);
  if (S.pinch) { if (S.pointers.size < 2) S.pinch = null; return; }
  if (S.pan) { S.pan = null; vp.classList.remove('panning'); return; }
  if (S.stroke || S.polyDrag) { editUp(event); return; }
  const d = S.drag;
  S.drag = null;
  if (!d || event.type === 'pointercancel') { drawPrompts(); return; }
  const t0 = event.timeStamp || performance.now();
  const [x, y] = imagePoint(event);
  if (S.props.length) { reviewClick(d); return; }
  if (S.v.local) { // the browser's own copy of a file still uploading
    drawPrompts();
    showMessage({title: 'Still uploading', message: 'the image is on its way to the server; click again in a moment.'});
    return;
  }
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
// While proposals are reviewed a click selects or unselects the one under it (at once here;
// the server's answer redraws the same), and prompts wait until they are kept or discarded.
function reviewClick(d) {
  drawPrompts();
  if (d.moved) {
    showMessage({title: 'Reviewing proposals', message: 'Keep or discard them first; then drag boxes and click points again.'});
    return;
  }
  const p = proposalAt(d.x0, d.y0);
  if (!p) {
    showMessage({title: 'No proposal there', message: 'Click inside an outline to select it.'});
    return;
  }
  p.selected = !p.selected;
  drawProposals(); drawPrompts();
  trigger('proposal', {index: p.index});
}
vp.addEventListener('pointerup', endPointer);
vp.addEventListener('pointercancel', endPointer);
vp.addEventListener('pointerleave', () => {
  S.inside = false; S.hoverWant = null; clearPreview();
  if (S.cursor && !S.stroke) { S.cursor = null; vp.classList.remove('painting'); drawEdit(); }
});

// --- toolbar and keys ------------------------------------------------------------------------
$('.pcl-fit').addEventListener('click', fitView);
$('.pcl-zoom-in').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(r.left + r.width / 2, r.top + r.height / 2, 1.5); });
$('.pcl-zoom-out').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(r.left + r.width / 2, r.top + r.height / 2, 1 / 1.5); });
$('.pcl-opacity').addEventListener('input', (e) => { S.opacity = Number(e.target.value) / 100; drawMasks(); });
$('.pcl-outline').addEventListener('change', (e) => { S.outline = e.target.checked; drawMasks(); });
$('.pcl-hover').addEventListener('change', (e) => { S.hover = e.target.checked; if (!S.hover) clearPreview(); });
$('.pcl-keep-sel').addEventListener('click', () => clickId('#proposals-keep-selected'));
$('.pcl-keep-all').addEventListener('click', () => clickId('#proposals-keep-all'));
$('.pcl-discard').addEventListener('click', () => clickId('#proposals-discard'));
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
  if (editKey(event, key)) { event.preventDefault(); return; } // V P E G, brush size, polygon
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
  else if (key === 'Enter' && S.props.length) clickId('#proposals-keep-selected');
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
