// The SegmentObjectList (ui/widgets/object_list.py). Runs as gr.HTML's js_on_load
// with `element`, `trigger`, `props` and `watch` in scope. Its value:
// workbench/segment/values.py `objects_value` (items, groups, classes).
//
// The shell (search box, bulk bar, scroll box) is built once, so typing in the search box,
// folded groups, the selection and the scroll position survive every new value; only the rows
// are rebuilt. Events: pick_object {id}, remove_object {id}, rename_object {id, name} and
// bulk_action {action, ids, class_id} (delete, hide, show, lock, unlock, solo, class).
const GROUP_FROM = 12;  // objects from which the list groups them (by class or name)
const S = {value: null, query: '', folded: new Set(), selected: new Set(), anchor: null,
           active: null, shape: null, rows: new Map()};
const ICON = {
  eye: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M1 12s4-7 11-7 11 7 11 7-4 7-11 7'
    + 'S1 12 1 12z"/><circle cx="12" cy="12" r="3"/></svg>',
  eyeOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M1 12s4-7 11-7 11 7 11 7-4 7-11'
    + ' 7S1 12 1 12z"/><path d="M3 3l18 18"/></svg>',
  lock: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="5" y="11" width="14" height="10"'
    + ' rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/></svg>',
  unlock: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="5" y="11" width="14" height="10"'
    + ' rx="2"/><path d="M8 11V7a4 4 0 0 1 7.5-2"/></svg>',
};
element.innerHTML = `
<div class="ol-root" data-testid="object-list">
  <div class="ol-tools">
    <input type="search" class="ol-search" placeholder="Search by name or class"
           aria-label="Search objects" data-testid="object-search">
    <button class="ol-tool ol-fold-all" title="Fold or unfold every group">Fold all</button>
    <button class="ol-tool ol-show-all" title="Show every hidden object" hidden>Show all</button>
  </div>
  <div class="ol-summary" data-testid="object-summary"></div>
  <div class="ol-bulk" data-testid="object-bulk" hidden>
    <span class="ol-bulk-count"></span>
    <button data-act="hide" title="Hide the selected objects">Hide</button>
    <button data-act="show" title="Show the selected objects">Show</button>
    <button data-act="solo" title="Show only the selected objects">Only these</button>
    <button data-act="lock" title="Lock the selected objects against edits">Lock</button>
    <button data-act="unlock" title="Unlock the selected objects">Unlock</button>
    <select class="ol-class" aria-label="Set the class of the selected objects" hidden></select>
    <button data-act="delete" class="ol-bulk-del" title="Delete the selected objects (one undo
brings them all back; locked ones stay)">Delete</button>
    <button class="ol-bulk-none" title="Clear the selection">✕</button>
  </div>
  <div class="ol-scroll" data-testid="object-list-scroll"></div>
</div>`;
const $ = (sel) => element.querySelector(sel);
const search = $('.ol-search');
const scroller = $('.ol-scroll');
const items = () => (S.value && S.value.items) || [];
const matches = (it) => !S.query || it.search.includes(S.query);
const isOpen = (key) => S.query !== '' || !S.folded.has(key);

function rowHtml(it) {
  const cls = ['ol-row', it.active ? 'active' : '', it.hidden ? 'is-hidden' : '',
               it.locked ? 'is-locked' : '', S.selected.has(it.id) ? 'selected' : ''].join(' ');
  return `<div class="${cls}" data-id="${it.id}" role="button" tabindex="0"
    title="Click to select this object; the next clicks refine it">
    <input type="checkbox" class="ol-check" ${S.selected.has(it.id) ? 'checked' : ''}
           aria-label="Select ${it.name}" title="Select (shift-click: a range)">
    <span class="ol-swatch" style="background: ${it.color}"></span>
    <span class="ol-name" title="Double-click to rename">${it.name}</span>
    <button class="ol-ren" title="Rename ${it.name}" aria-label="Rename ${it.name}">✎</button>
    <span class="ol-meta">${it.meta}</span>
    <button class="ol-eye ${it.hidden ? 'off' : ''}" aria-pressed="${it.hidden}"
      title="${it.hidden ? 'Show' : 'Hide'} ${it.name} (Alt-click: hide all others)"
      aria-label="${it.hidden ? 'Show' : 'Hide'} ${it.name}">${it.hidden ? ICON.eyeOff : ICON.eye}</button>
    <button class="ol-lock ${it.locked ? 'on' : ''}" aria-pressed="${it.locked}"
      title="${it.locked ? 'Unlock' : 'Lock'} ${it.name}"
      aria-label="${it.locked ? 'Unlock' : 'Lock'} ${it.name}">${it.locked ? ICON.lock : ICON.unlock}</button>
    <button class="ol-del" title="Delete ${it.name}" aria-label="Delete ${it.name}">✕</button>
  </div>`;
}

function groupHtml(g, rows, row) {
  const open = isOpen(g.key);
  const shown = rows.filter(matches);
  const picked = rows.filter((it) => S.selected.has(it.id)).length;
  const count = S.query ? `${shown.length} of ${g.count}` : `${g.count}`;
  const hidden = g.hidden ? ` · ${g.hidden} hidden` : '';
  const allHidden = g.hidden === g.count;
  return `<div class="ol-group" data-key="${g.key}" ${shown.length ? '' : 'hidden'}>
    <div class="ol-ghead">
      <button class="ol-fold" aria-expanded="${open}" title="Fold or unfold ${g.label}"
        >${open ? '▾' : '▸'}</button>
      <input type="checkbox" class="ol-gsel" ${picked && picked === rows.length ? 'checked' : ''}
        data-partial="${picked > 0 && picked < rows.length}" aria-label="Select every ${g.label}"
        title="Select every object of this group">
      <span class="ol-swatch" style="background: ${g.color}"></span>
      <span class="ol-glabel">${g.label}</span>
      <span class="ol-gcount" data-testid="group-count">${count}${hidden}</span>
      <button class="ol-geye ${allHidden ? 'off' : ''}"
        title="${allHidden ? 'Show' : 'Hide'} every ${g.label}"
        aria-label="${allHidden ? 'Show' : 'Hide'} every ${g.label}"
        >${allHidden ? ICON.eyeOff : ICON.eye}</button>
    </div>
    <div class="ol-rows" ${open ? '' : 'hidden'}>${open ? shown.map(row).join('') : ''}</div>
  </div>`;
}

function render() {
  const list = items();
  const known = new Set(list.map((it) => it.id));
  for (const id of [...S.selected]) if (!known.has(id)) S.selected.delete(id);
  const top = scroller.scrollTop;
  if (!list.length) {
    scroller.innerHTML = '<div class="ol-empty">No objects yet.</div>';
    S.shape = null;
  } else {
    const byGroup = new Map();
    for (const it of list) {
      if (!byGroup.has(it.group)) byGroup.set(it.group, []);
      byGroup.get(it.group).push(it);
    }
    const groups = (S.value.groups || []).filter((g) => byGroup.has(g.key));
    const flat = list.length < GROUP_FROM;  // a few objects read best as they were made
    const found = list.filter(matches);
    // Rows stand as placeholders in `shape`: when only rows changed (a pick moves "active"
    // from one row to another), only those rows are replaced, not 200 of them.
    const rows = new Map();
    const row = (it) => { rows.set(it.id, rowHtml(it)); return `<!--r${it.id}-->`; };
    const shape = (flat ? found.map(row).join('')
      : groups.map((g) => groupHtml(g, byGroup.get(g.key), row)).join(''))
      || '<div class="ol-empty">No objects match.</div>';
    if (shape === S.shape) {
      for (const [id, html] of rows) {
        if (S.rows.get(id) === html) continue;
        const el = scroller.querySelector(`.ol-row[data-id="${id}"]`);
        if (el) el.outerHTML = html;
      }
    } else {
      scroller.innerHTML = shape.replace(/<!--r(\d+)-->/g, (_, id) => rows.get(Number(id)));
      S.shape = shape;
    }
    S.rows = rows;
    scroller.classList.toggle('single', groups.length === 1 && !S.query);
    for (const box of scroller.querySelectorAll('.ol-gsel')) {
      box.indeterminate = box.dataset.partial === 'true';
    }
  }
  scroller.scrollTop = top;
  const hidden = list.filter((it) => it.hidden).length;
  const found = list.filter(matches).length;
  $('.ol-summary').textContent = list.length
    ? `${list.length} object${list.length === 1 ? '' : 's'}` + (hidden ? ` · ${hidden} hidden` : '')
      + (S.query ? ` · ${found} match` : '')
    : '';
  $('.ol-show-all').hidden = hidden === 0;
  $('.ol-fold-all').hidden = list.length < GROUP_FROM || (S.value.groups || []).length < 2;
  renderBulk();
  const active = list.find((it) => it.active);
  if (active && active.id !== S.active) {
    S.active = active.id;
    reveal(active.id);
  }
}

function renderBulk() {
  const n = S.selected.size;
  const bar = $('.ol-bulk');
  bar.hidden = n === 0;
  $('.ol-bulk-count').textContent = `${n} selected`;
  const classes = (S.value && S.value.classes) || [];
  const pick = $('.ol-class');
  pick.hidden = classes.length === 0;
  const options = '<option value="">Set class…</option>'
    + classes.map((c) => `<option value="${c.id}">${c.name}</option>`).join('');
  if (pick.dataset.options !== options) {
    pick.innerHTML = options;
    pick.dataset.options = options;
  }
}

function reveal(id) {
  // Scroll the list box (not the page) so the active row is in view; a folded group opens.
  const it = items().find((x) => x.id === id);
  if (it && S.folded.has(it.group)) {
    S.folded.delete(it.group);
    render();
    return;
  }
  const row = scroller.querySelector(`.ol-row[data-id="${id}"]`);
  if (!row) return;
  const rowTop = row.getBoundingClientRect().top - scroller.getBoundingClientRect().top
    + scroller.scrollTop;
  if (rowTop < scroller.scrollTop) scroller.scrollTop = rowTop - 4;
  else if (rowTop + row.offsetHeight > scroller.scrollTop + scroller.clientHeight) {
    scroller.scrollTop = rowTop + row.offsetHeight - scroller.clientHeight + 4;
  }
}

function visibleIds() {
  return [...scroller.querySelectorAll('.ol-row')].map((r) => Number(r.dataset.id));
}

function select(id, on, range) {
  if (range && S.anchor !== null) {
    const ids = visibleIds();
    const a = ids.indexOf(S.anchor);
    const b = ids.indexOf(id);
    if (a >= 0 && b >= 0) {
      for (const x of ids.slice(Math.min(a, b), Math.max(a, b) + 1)) S.selected.add(x);
      render();
      return;
    }
  }
  if (on) S.selected.add(id); else S.selected.delete(id);
  S.anchor = id;
  render();
}

function bulk(action, ids, extra) {
  if (!ids.length) return;
  trigger('bulk_action', Object.assign({action, ids}, extra || {}));
}

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
    input.replaceWith(name);  // the new value brings the new name (rows are patched)
    if (save) trigger('rename_object', {id: Number(row.dataset.id), name: input.value});
  };
  input.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  input.addEventListener('click', (e) => e.stopPropagation());
};

search.addEventListener('input', () => {
  S.query = search.value.trim().toLowerCase();
  render();
});
search.addEventListener('keydown', (e) => {
  e.stopPropagation();  // the canvas's shortcuts (N, B, Delete) are not for this box
  if (e.key === 'Escape') { search.value = ''; S.query = ''; render(); }
});
$('.ol-fold-all').addEventListener('click', () => {
  const keys = ((S.value && S.value.groups) || []).map((g) => g.key);
  const allFolded = keys.every((k) => S.folded.has(k));
  S.folded = allFolded ? new Set() : new Set(keys);
  $('.ol-fold-all').textContent = allFolded ? 'Fold all' : 'Unfold all';
  render();
});
$('.ol-show-all').addEventListener('click', () => bulk('show', items().map((it) => it.id)));
$('.ol-bulk').addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  if (button.classList.contains('ol-bulk-none')) { S.selected.clear(); render(); return; }
  const ids = [...S.selected];
  if (button.dataset.act === 'delete') S.selected.clear();
  bulk(button.dataset.act, ids);
});
$('.ol-class').addEventListener('change', (event) => {
  const value = event.target.value;
  event.target.value = '';
  if (value !== '') bulk('class', [...S.selected], {class_id: Number(value)});
});
// The row shows as the active one at once (the server's answer, a redraw of the canvas and
// the panels, follows: with 200 objects that is most of a second). A pick the server refuses
// (the object was deleted meanwhile) shows its message, and the list's next value puts the
// mark back where it belongs.
function pick(id) {
  for (const r of scroller.querySelectorAll('.ol-row.active')) r.classList.remove('active');
  const row = scroller.querySelector(`.ol-row[data-id="${id}"]`);
  if (row) row.classList.add('active');
  trigger('pick_object', {id});
}
scroller.addEventListener('dblclick', (event) => {
  const row = event.target.closest('.ol-row');
  if (row && event.target.closest('.ol-name')) rename(row);
});
scroller.addEventListener('keydown', (event) => {
  const row = event.target.closest('.ol-row');
  if (row && event.target === row && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    pick(Number(row.dataset.id));
  }
});
scroller.addEventListener('click', (event) => {
  const t = event.target;
  const head = t.closest('.ol-ghead');
  if (head) {
    const key = head.parentElement.dataset.key;
    const rows = items().filter((it) => it.group === key && matches(it));
    if (t.closest('.ol-gsel')) {
      const on = t.checked;
      for (const it of rows) { if (on) S.selected.add(it.id); else S.selected.delete(it.id); }
      render();
    } else if (t.closest('.ol-geye')) {
      const anyShown = rows.some((it) => !it.hidden);
      bulk(anyShown ? 'hide' : 'show', rows.map((it) => it.id));
    } else {
      if (S.folded.has(key)) S.folded.delete(key); else S.folded.add(key);
      render();
    }
    return;
  }
  const row = t.closest('.ol-row');
  if (!row) return;
  const id = Number(row.dataset.id);
  const it = items().find((x) => x.id === id);
  if (t.closest('.ol-check')) { select(id, t.checked, event.shiftKey); return; }
  if (t.closest('.ol-ren')) { event.stopPropagation(); rename(row); return; }
  if (t.closest('.ol-eye')) {
    if (event.altKey) bulk('solo', [id]);
    else bulk(it && it.hidden ? 'show' : 'hide', [id]);
    return;
  }
  if (t.closest('.ol-lock')) { bulk(it && it.locked ? 'unlock' : 'lock', [id]); return; }
  if (t.closest('.ol-del')) { event.stopPropagation(); trigger('remove_object', {id}); return; }
  if (t.closest('.ol-edit')) return;
  if (event.shiftKey || event.ctrlKey || event.metaKey) {
    select(id, !S.selected.has(id), event.shiftKey);
    return;
  }
  pick(id);
});
const marks = (window.__samwb_marks = window.__samwb_marks || []);  // bench_browser.py reads
watch('value', () => {
  const t0 = performance.now();
  S.value = props.value;
  render();
  marks.push({kind: 'objects', t0, t1: performance.now(), rows: items().length});
});
S.value = props.value;
render();
