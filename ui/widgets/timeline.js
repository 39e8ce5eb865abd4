// The Video view's Timeline (ui/widgets/timeline.py). Runs as gr.HTML's js_on_load, with
// `element`, `trigger`, `props` and `watch` in scope. Its value: workbench/video/timeline.py
// ({frames, current, rows: [{id, name, color, tracked, present, prompted, corrected, active}]},
// runs half-open [start, stop)).
//
// Names are HTML (text only); the frames are drawn on two <canvas> elements (a ruler and the
// rows), each frame a cell of width/frames pixels, so a long clip or many objects cost no more
// DOM. A click or drag on the ruler or the rows, or the arrow keys when it has focus, fires
// `seek` with {frame}; the view answers with the new frame (the marker moves at once here).
const ROW_H = 12;
const RULER_H = 14;
const S = {v: null, cur: 0, drag: false, hover: -1};
element.innerHTML = `
<div class="tl-root" data-testid="timeline" data-frames="0" data-current="0">
  <div class="tl-head">
    <span class="tl-title">Timeline</span>
    <span class="tl-legend" aria-hidden="true">
      <span class="tl-key"><i class="tl-k tl-k-seen"></i>seen</span>
      <span class="tl-key"><i class="tl-k tl-k-tracked"></i>tracked, not seen</span>
      <span class="tl-key"><i class="tl-k tl-k-prompt"></i>prompted</span>
      <span class="tl-key"><i class="tl-k tl-k-fix"></i>corrected</span>
    </span>
    <span class="tl-help">click a frame to go there · arrow keys when selected</span>
  </div>
  <div class="tl-empty"></div>
  <div class="tl-body" tabindex="0" role="slider" aria-label="Timeline: go to a frame"
       aria-valuemin="0" aria-valuemax="0" aria-valuenow="0" hidden>
    <div class="tl-corner">frame</div>
    <div class="tl-ruler-cell"><canvas class="tl-ruler"></canvas></div>
    <div class="tl-names"></div>
    <div class="tl-tracks"><canvas class="tl-rows"></canvas></div>
  </div>
</div>`;
const $ = (sel) => element.querySelector(sel);
const root = $('.tl-root'), body = $('.tl-body'), names = $('.tl-names');
const ruler = $('.tl-ruler'), rowsCv = $('.tl-rows'), tracks = $('.tl-tracks');

function theme() {
  const css = getComputedStyle(root);
  const pick = (name, fallback) => (css.getPropertyValue(name) || '').trim() || fallback;
  return {text: pick('--body-text-color', '#333'), line: pick('--border-color-primary', '#ccc'),
          stripe: pick('--background-fill-secondary', '#f4f4f5'),
          accent: pick('--color-accent', '#f97316')};
}

function sized(cv, height) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, tracks.clientWidth);
  cv.style.height = `${height}px`;
  if (cv.width !== Math.round(width * dpr) || cv.height !== Math.round(height * dpr)) {
    cv.width = Math.round(width * dpr); cv.height = Math.round(height * dpr);
  }
  const ctx = cv.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return [ctx, width];
}

const xOf = (frame, width) => (frame / S.v.frames) * width;

function step(frames, width) { // ruler labels at least ~44 px apart
  for (const s of [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000]) {
    if ((s / frames) * width >= 44) return s;
  }
  return 10000;
}

function marker(ctx, x, y, corrected) {
  ctx.beginPath();
  if (corrected) { // a diamond: the track was fixed here
    ctx.moveTo(x, y - 5); ctx.lineTo(x + 5, y); ctx.lineTo(x, y + 5); ctx.lineTo(x - 5, y);
    ctx.closePath();
    ctx.fillStyle = '#111827';
  } else { // a dot: a click or box here
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fillStyle = '#ffffff';
  }
  ctx.fill();
  ctx.lineWidth = 1.25;
  ctx.strokeStyle = corrected ? '#ffffff' : '#111827';
  ctx.stroke();
}

function nowLine(ctx, width, height, t, top = 0) { // the frame shown: its cell and a line
  const x0 = xOf(S.cur, width), x1 = xOf(S.cur + 1, width);
  ctx.globalAlpha = 0.16; ctx.fillStyle = t.accent;
  ctx.fillRect(x0, 0, Math.max(1, x1 - x0), height);
  ctx.globalAlpha = 1;
  ctx.fillRect(Math.round((x0 + x1) / 2) - 1, top, 2, height - top);
}

function label(ctx, text, x, width) { // centred on x, kept inside the ruler
  const w = ctx.measureText(text).width;
  const left = Math.min(Math.max(0, x - w / 2), width - w);
  ctx.fillText(text, left, 1);
  return [left - 3, left + w + 3];
}

function draw() {
  const v = S.v;
  if (!v || !v.frames || !v.rows.length || !tracks.clientWidth) return;
  const t = theme();
  // the ruler: ticks and frame numbers at the cells' centres
  let [ctx, width] = sized(ruler, RULER_H);
  const cell = width / v.frames, every = step(v.frames, width);
  nowLine(ctx, width, RULER_H, t, RULER_H - 4);
  ctx.textBaseline = 'top'; ctx.textAlign = 'left';
  ctx.font = 'bold 10px system-ui, sans-serif'; ctx.fillStyle = t.accent;
  const [c0, c1] = label(ctx, String(S.cur), xOf(S.cur, width) + cell / 2, width);
  ctx.font = '10px system-ui, sans-serif'; ctx.fillStyle = t.text; ctx.globalAlpha = 0.75;
  for (let f = 0; f < v.frames; f += every) {
    const x = xOf(f, width) + cell / 2;
    ctx.fillRect(Math.round(x), RULER_H - 3, 1, 3);
    const w = ctx.measureText(String(f)).width;
    if (x + w / 2 + 3 > c0 && x - w / 2 - 3 < c1) continue; // the frame shown's number wins
    label(ctx, String(f), x, width);
  }
  ctx.globalAlpha = 1;
  // the rows
  const height = v.rows.length * ROW_H;
  [ctx, width] = sized(rowsCv, height);
  v.rows.forEach((row, i) => {
    const y = i * ROW_H;
    if (i % 2) { ctx.fillStyle = t.stripe; ctx.fillRect(0, y, width, ROW_H); }
    ctx.fillStyle = row.color;
    ctx.globalAlpha = 0.22;
    for (const [a, b] of row.tracked) ctx.fillRect(xOf(a, width), y + 3, Math.max(1, xOf(b, width) - xOf(a, width)), ROW_H - 6);
    ctx.globalAlpha = 1;
    for (const [a, b] of row.present) ctx.fillRect(xOf(a, width), y + 2, Math.max(1, xOf(b, width) - xOf(a, width)), ROW_H - 4);
    const fixed = new Set(row.corrected);
    for (const f of row.prompted) marker(ctx, xOf(f + 0.5, width), y + ROW_H / 2, fixed.has(f));
  });
  nowLine(ctx, width, height, t);
  if (S.hover >= 0) {
    ctx.globalAlpha = 0.35; ctx.fillStyle = t.text;
    ctx.fillRect(Math.round(xOf(S.hover + 0.5, width)), 0, 1, height);
    ctx.globalAlpha = 1;
  }
}

function runsText(runs) {
  return runs.map(([a, b]) => (b - a > 1 ? `${a}–${b - 1}` : `${a}`)).join(', ') || 'none';
}

function render(v) {
  S.v = v && v.frames ? v : null;
  const rows = S.v ? S.v.rows : [];
  root.dataset.frames = String(S.v ? S.v.frames : 0);
  root.dataset.current = String(S.v ? S.v.current : 0);
  if (S.v && !S.drag) S.cur = S.v.current;
  body.hidden = !rows.length;
  $('.tl-title').textContent = rows.length > 1 ? `Timeline · ${rows.length} objects` : 'Timeline';
  const empty = $('.tl-empty');
  empty.hidden = !!rows.length;
  empty.textContent = S.v ? 'No objects yet: click an object on the frame (or drag a box), then '
    + 'Track; each object gets a row here.' : 'Open a clip: each object gets a row here.';
  names.replaceChildren(...rows.map((row) => {
    const div = document.createElement('div');
    div.className = 'tl-name' + (row.active ? ' active' : '');
    div.dataset.id = String(row.id);
    div.dataset.present = JSON.stringify(row.present);
    div.dataset.tracked = JSON.stringify(row.tracked);
    div.dataset.prompted = JSON.stringify(row.prompted);
    div.dataset.corrected = JSON.stringify(row.corrected);
    div.title = `${row.name}: seen on frames ${runsText(row.present)}; prompted on `
      + `${row.prompted.join(', ') || 'none'}; corrected on ${row.corrected.join(', ') || 'none'}`;
    const sw = document.createElement('i');
    sw.className = 'tl-swatch'; sw.style.background = row.color;
    const label = document.createElement('span');
    label.textContent = row.name;
    div.append(sw, label);
    return div;
  }));
  body.setAttribute('aria-valuemax', String(S.v ? S.v.frames - 1 : 0));
  body.setAttribute('aria-valuenow', String(S.cur));
  draw();
}

function frameAt(clientX) {
  const box = tracks.getBoundingClientRect();
  const f = Math.floor(((clientX - box.left) / Math.max(1, box.width)) * S.v.frames);
  return Math.min(Math.max(0, f), S.v.frames - 1);
}

function go(frame) {
  if (!S.v) return;
  frame = Math.min(Math.max(0, frame), S.v.frames - 1);
  const moved = frame !== S.cur;
  S.cur = frame;
  body.setAttribute('aria-valuenow', String(frame));
  draw();
  return moved;
}

for (const cv of [ruler, rowsCv]) {
  cv.addEventListener('pointerdown', (event) => {
    if (!S.v || event.button !== 0) return;
    event.preventDefault();
    body.focus({preventScroll: true});
    S.drag = true;
    cv.setPointerCapture(event.pointerId);
    go(frameAt(event.clientX));
    trigger('seek', {frame: S.cur});
  });
  cv.addEventListener('pointermove', (event) => {
    if (!S.v) return;
    const f = frameAt(event.clientX);
    if (S.drag) {
      if (go(f)) trigger('seek', {frame: S.cur});
      return;
    }
    if (f !== S.hover) {
      S.hover = f;
      const i = Math.floor(event.offsetY / ROW_H);
      const row = cv === rowsCv ? S.v.rows[i] : null;
      cv.title = row ? `Frame ${f} · ${row.name}: click to go there` : `Frame ${f}: click to go there`;
      draw();
    }
  });
  const end = () => { S.drag = false; };
  cv.addEventListener('pointerup', end);
  cv.addEventListener('pointercancel', end);
  cv.addEventListener('pointerleave', () => { if (!S.drag && S.hover >= 0) { S.hover = -1; draw(); } });
}

body.addEventListener('keydown', (event) => {
  if (!S.v) return;
  const big = Math.max(10, Math.round(S.v.frames / 10));
  const moves = {ArrowLeft: -1, ArrowRight: 1, PageUp: -big, PageDown: big};
  let target = null;
  if (event.key in moves) target = S.cur + (event.shiftKey ? 10 * Math.sign(moves[event.key]) : moves[event.key]);
  else if (event.key === 'Home') target = 0;
  else if (event.key === 'End') target = S.v.frames - 1;
  else if (event.key === 'Enter' || event.key === ' ') target = S.cur;
  if (target === null) return;
  event.preventDefault();
  event.stopPropagation();
  go(target);
  trigger('seek', {frame: S.cur});
});

new ResizeObserver(() => draw()).observe(tracks);
watch('value', () => render(props.value));
render(props.value);
