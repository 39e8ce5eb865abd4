"""The downloads panel: links from ``workbench.segment.downloads.downloads_value``; crop."""

from __future__ import annotations

from typing import Any

import gradio as gr

_HTML = """
<div class="dl-root" data-testid="downloads" data-render="${(value && value.n) || 0}">
${value && value.items && value.items.length ? `
  <div class="dl-row">
  ${value.items.slice(0, 2).map(it => `<a class="dl-main" id="download-${it.key}"
      href="${it.href}" data-href="${it.href}" data-crop="${it.crop ? 1 : 0}"
      download="${it.name}">↓ ${it.label}</a>`).join('')}
    <label class="dl-crop"><input type="checkbox" class="dl-crop-box"> crop cut-outs to the
      object (+5 %)</label>
  </div>
  <details class="dl-more" id="export-files"><summary>Per-object files
      (${value.items.length - 2})</summary>
  ${value.items.slice(2).map(it => `<a class="dl-file" href="${it.href}" data-href="${it.href}"
      data-crop="${it.crop ? 1 : 0}" download="${it.name}">${it.name}</a>`).join('')}
  </details>` : `<div class="dl-note">${(value && value.note) || ''}</div>`}
</div>
"""

_CSS = """
.dl-root { display: flex; flex-direction: column; gap: 6px; font-size: .92em; }
.dl-row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.dl-main { padding: 5px 12px; border-radius: 6px; text-decoration: none;
  background: var(--button-primary-background-fill); color: var(--button-primary-text-color); }
.dl-main:hover { filter: brightness(1.08); }
.dl-crop { display: flex; gap: 4px; align-items: center; opacity: .85; cursor: pointer; }
.dl-more summary { cursor: pointer; opacity: .85; }
.dl-file { display: inline-block; margin: 2px 10px 2px 0; }
.dl-note { opacity: .7; }
"""

_JS = """
const apply = () => {
  const box = element.querySelector('.dl-crop-box');
  const crop = !!(box && box.checked);
  element.querySelectorAll('a[data-href]').forEach(a => {
    a.href = a.dataset.href + (crop && a.dataset.crop === '1' ? '?crop=1' : '');
  });
};
element.addEventListener('change', (event) => {
  if (event.target.classList.contains('dl-crop-box')) {
    element.dataset.crop = event.target.checked ? '1' : '';
    apply();
  }
});
watch('value', () => {
  const box = element.querySelector('.dl-crop-box');
  if (box) box.checked = element.dataset.crop === '1';
  apply();
});
"""


class DownloadsPanel(gr.HTML):
    """Download links for the session's objects (``downloads_value``); nothing to prepare."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value or {"items": []}, html_template=_HTML, css_template=_CSS,
                         js_on_load=_JS, **kwargs)
