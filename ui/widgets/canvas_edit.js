// The PromptCanvas's editing tools (ui/widgets/canvas.py joins canvas.js, this file and
// canvas_input.js in one js_on_load scope): brush, eraser and polygon on the active object's
// mask, live canvas (Segment) only.
//
// A stroke is drawn here while the button is down (a round brush of the chosen radius, in the
// object's colour; the eraser cuts the drawn masks), so each pointer move gives a frame with no
// server round trip; on release the whole stroke goes to the live route (`paint`), which
// decides the exact pixels (workbench/segment/edits.py) and answers the new mask like a click.
// The polygon tool asks for the mask's outline (`outline`), lets the person move, add and
// remove vertices, and sends the rings (`polygon`). Sizes are in original-image pixels.
const STROKE_SPLIT = 1800; // points per request (the server takes 2,000): longer strokes split
const STROKE_WORK = 4e7; // and sooner for a wide brush (edits.py MAX_STROKE_WORK is 1.2e8)
const BRUSH_MIN = 1, BRUSH_MAX = 256;
const isBrushTool = () => S.tool === 'brush' || S.tool === 'erase';
const round2 = (p) => [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100];
const TOOL_HINTS = {
  brush: 'Brush: paint onto the selected object · [ ] or Alt + wheel: size · right-drag erases · V: back to clicks',
  erase: 'Eraser: erase from the selected object · [ ] or Alt + wheel: size · right-drag paints · V: back to clicks',
  polygon: 'Polygon: drag a vertex · double-click an edge to add one · right- or Alt-click a vertex to remove it · Enter: apply · Esc: cancel',
};

function activeColor() {
  for (const l of S.layers.values()) if (l.active) return l.color;
  const o = ((S.v && S.v.objects) || []).find((x) => x.id === S.v.active);
  return o ? o.color : '#ffffff';
}
function setTool(tool) {
  if (tool !== 'prompt' && S.props.length) { // proposals under review take the clicks
    showMessage({title: 'Reviewing proposals', message: 'keep or discard them first, then edit masks.'});
    tool = 'prompt';
  }
  if (S.stroke) cancelStroke();
  S.tool = tool;
  for (const b of element.querySelectorAll('.pcl-tool')) {
    b.classList.toggle('on', b.dataset.tool === tool);
    b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  }
  const brush = isBrushTool();
  if (brush && !S.brushR && S.v && S.v.w) S.brushR = Math.max(2, Math.round(Math.max(S.v.w, S.v.h) / 80));
  $('.pcl-size').hidden = !brush;
  $('.pcl-poly-apply').hidden = $('.pcl-poly-cancel').hidden = tool !== 'polygon';
  vp.classList.toggle('painting', brush && !!S.cursor);
  root.dataset.tool = tool;
  S.polyDrag = null; S.poly = null;
  if (tool !== 'prompt') { S.hoverWant = null; clearPreview(); }
  hintEl.innerHTML = TOOL_HINTS[tool] || S.objectHint || '';
  showSize();
  if (tool === 'polygon') refreshOutline();
  drawEdit();
}
function showSize() { $('.pcl-size').textContent = `${S.brushR} px`; }
function resizeBrush(step) {
  const r = S.brushR;
  S.brushR = step > 0 ? Math.min(BRUSH_MAX, Math.max(r + 1, Math.round(r * 1.25)))
    : Math.max(BRUSH_MIN, Math.min(r - 1, Math.round(r / 1.25)));
  showSize();
  drawEdit();
}

// --- drawing -------------------------------------------------------------------------------
function drawEdit() {
  if (!S.v || !S.v.src) return;
  let out = '';
  if (S.poly) {
    const h = 5 / scale() * k(); // a vertex handle keeps 5 screen pixels at any zoom
    const d = S.poly.rings.map((r) => `M${r.pts.map((p) => `${p[0]} ${p[1]}`).join(' L')} Z`).join(' ');
    out += `<path class="pcl-poly" d="${d}" fill-rule="evenodd" vector-effect="non-scaling-stroke"></path>`;
    S.poly.rings.forEach((r, i) => r.pts.forEach((p, j) => {
      out += `<circle class="pcl-vtx${r.hole ? ' hole' : ''}" data-ring="${i}" data-i="${j}" cx="${p[0]}" cy="${p[1]}" r="${h}" vector-effect="non-scaling-stroke"></circle>`;
    }));
  }
  if (S.cursor && isBrushTool()) {
    const [x, y] = S.cursor;
    out += `<circle class="pcl-cursor-under" cx="${x}" cy="${y}" r="${S.brushR}" vector-effect="non-scaling-stroke"></circle>`
      + `<circle class="pcl-cursor ${S.tool}" cx="${x}" cy="${y}" r="${S.brushR}" vector-effect="non-scaling-stroke"></circle>`;
  }
  editSvg.innerHTML = out;
}
function moveCursor() { // the common case while painting: two attributes, no new elements
  const circles = editSvg.querySelectorAll('.pcl-cursor, .pcl-cursor-under');
  if (!S.cursor || circles.length !== 2 || S.poly) { drawEdit(); return; }
  for (const c of circles) {
    c.setAttribute('cx', S.cursor[0]); c.setAttribute('cy', S.cursor[1]); c.setAttribute('r', S.brushR);
  }
}
function clearPaint() { paintCv.getContext('2d').clearRect(0, 0, paintCv.width, paintCv.height); }
function paintSegment(a, b) {
  const st = S.stroke, erase = st.mode === 'erase', kk = k();
  const c = (erase ? maskCv : paintCv).getContext('2d');
  c.save();
  c.globalCompositeOperation = erase ? 'destination-out' : 'source-over';
  c.strokeStyle = c.fillStyle = st.color;
  c.lineWidth = 2 * st.r / kk; c.lineCap = 'round'; c.lineJoin = 'round';
  c.beginPath();
  if (a === b) { c.arc(a[0] / kk, a[1] / kk, st.r / kk, 0, 2 * Math.PI); c.fill(); }
  else { c.moveTo(a[0] / kk, a[1] / kk); c.lineTo(b[0] / kk, b[1] / kk); c.stroke(); }
  c.restore();
}
function frameMark(event) { // pointer event -> the frame that shows it (bench_browser.py)
  const t0 = event.timeStamp || performance.now();
  requestAnimationFrame(() => {
    if (marks.length > 4000) marks.splice(0, 1000);
    marks.push({kind: 'brush', t0, t1: performance.now()});
  });
}

// --- brush and eraser ----------------------------------------------------------------------
function sendStroke(st, t0) {
  hintEl.innerHTML = st.mode === 'erase' ? 'Erasing…' : 'Painting…';
  enqueue('paint', {points: st.pts.map(round2), radius: st.r, mode: st.mode}, t0);
}
function cancelStroke() {
  S.stroke = null;
  clearPaint();
  drawMasks(); // undoes the eraser's preview
}

// --- polygon -------------------------------------------------------------------------------
function refreshOutline() {
  if (!S.v || !S.v.live || S.tool !== 'polygon') return;
  S.poly = null;
  drawEdit();
  if (!S.queue.some((j) => j.kind === 'outline')) enqueue('outline', {}, performance.now());
}
function takeOutline(res) {
  if (S.tool !== 'polygon') return;
  if (!res.rings.length) {
    S.poly = null;
    hintEl.innerHTML = 'Polygon: this object has no mask yet. Click it first, or paint it with the brush (P).';
  } else {
    S.poly = {rings: res.rings.map((r) => ({pts: r.points, hole: r.hole}))};
    hintEl.innerHTML = TOOL_HINTS.polygon;
  }
  drawEdit();
  bump();
}
function nearestVertex(x, y) {
  let best = null, bd = 9 / scale() * k();
  S.poly.rings.forEach((r, i) => r.pts.forEach((p, j) => {
    const d = Math.hypot(p[0] - x, p[1] - y);
    if (d <= bd) { bd = d; best = [i, j]; }
  }));
  return best;
}
function nearestEdge(x, y) { // [ring, index to insert at, point on the edge]
  let best = null, bd = 9 / scale() * k();
  S.poly.rings.forEach((r, i) => r.pts.forEach((a, j) => {
    const b = r.pts[(j + 1) % r.pts.length], dx = b[0] - a[0], dy = b[1] - a[1];
    const t = Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy || 1)));
    const p = [a[0] + t * dx, a[1] + t * dy], d = Math.hypot(p[0] - x, p[1] - y);
    if (d <= bd) { bd = d; best = [i, j + 1, p]; }
  }));
  return best;
}
function removeVertex([i, j]) {
  const ring = S.poly.rings[i];
  if (ring.pts.length > 3) ring.pts.splice(j, 1);
  else S.poly.rings.splice(i, 1); // a triangle's vertex: the ring goes
  drawEdit();
}
function applyPolygon() {
  if (S.tool !== 'polygon' || !S.poly) return;
  if (!S.poly.rings.length) {
    showMessage({title: 'Nothing left', message: 'Every ring was removed; use Clear to remove the mask, or Esc.'});
    return;
  }
  hintEl.innerHTML = 'Applying the polygon…';
  enqueue('polygon', {rings: S.poly.rings.map((r) => r.pts.map(round2))}, performance.now());
  S.poly = null;
  drawEdit();
}

// --- pointer (called by canvas_input.js for any tool but prompts) -----------------------------
function editDown(event) {
  const [x, y] = imagePoint(event);
  if (isBrushTool()) {
    if (event.button !== 0 && event.button !== 2) return;
    const mode = (S.tool === 'erase') !== (event.button === 2) ? 'erase' : 'add';
    S.stroke = {mode, r: S.brushR, pts: [[x, y]], color: activeColor(),
                t0: event.timeStamp || performance.now()};
    paintCv.style.opacity = String(S.opacity === null ? 0.5 : Math.max(0.25, S.opacity));
    paintSegment(S.stroke.pts[0], S.stroke.pts[0]);
    frameMark(event);
    return;
  }
  if (S.tool !== 'polygon' || !S.poly) return;
  const hit = nearestVertex(x, y);
  if (!hit) return;
  if (event.button === 2 || event.altKey) removeVertex(hit);
  else if (event.button === 0) S.polyDrag = hit;
}
function editMove(event) {
  const [x, y, inside] = imagePoint(event);
  if (isBrushTool()) {
    S.cursor = inside || S.stroke ? [x, y] : null;
    vp.classList.toggle('painting', !!S.cursor); // the circle replaces the pointer on the image
    moveCursor();
    const st = S.stroke;
    if (!st) return;
    const last = st.pts[st.pts.length - 1];
    if (Math.hypot(x - last[0], y - last[1]) < 0.25) return;
    st.pts.push([x, y]);
    paintSegment(last, [x, y]);
    frameMark(event);
    const side = 2 * st.r + 2, limit = Math.max(20, Math.min(STROKE_SPLIT, STROKE_WORK / (side * side)));
    if (st.pts.length >= limit) { sendStroke(st, st.t0); S.stroke = {...st, pts: [[x, y]]}; }
    return;
  }
  if (S.polyDrag) {
    const [i, j] = S.polyDrag;
    S.poly.rings[i].pts[j] = [x, y];
    drawEdit();
  }
}
function editUp(event) {
  if (S.stroke) {
    const st = S.stroke;
    S.stroke = null;
    if (event.type === 'pointercancel') { cancelStroke(); return; }
    sendStroke(st, event.timeStamp || performance.now());
  }
  S.polyDrag = null;
}
vp.addEventListener('dblclick', (event) => {
  if (S.tool !== 'polygon' || !S.poly) return;
  const [x, y] = imagePoint(event);
  if (nearestVertex(x, y)) return;
  const hit = nearestEdge(x, y);
  if (!hit) return;
  S.poly.rings[hit[0]].pts.splice(hit[1], 0, hit[2]);
  drawEdit();
});

// --- toolbar and keys ------------------------------------------------------------------------
for (const b of element.querySelectorAll('.pcl-tool')) b.addEventListener('click', () => setTool(b.dataset.tool));
$('.pcl-poly-apply').addEventListener('click', applyPolygon);
$('.pcl-poly-cancel').addEventListener('click', () => setTool('prompt'));
// Keys of the editing tools; true when the key was theirs (canvas_input.js's keydown asks first).
function editKey(event, key) {
  if (!S.v || !S.v.live || event.ctrlKey || event.metaKey || event.altKey) return false;
  const tools = {v: 'prompt', p: 'brush', e: 'erase', g: 'polygon'};
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (tools[lower]) { setTool(tools[lower]); return true; }
  if (isBrushTool() && (key === '[' || key === ']')) { resizeBrush(key === ']' ? 1 : -1); return true; }
  if (S.tool === 'polygon' && key === 'Enter') { applyPolygon(); return true; }
  if (key === 'Escape' && S.stroke) { cancelStroke(); return true; }
  if (key === 'Escape' && S.tool === 'polygon') { setTool('prompt'); return true; }
  return false;
}
