"""The Segment view's object list (``SegmentObjectList``), usable at 200 objects (an OWLv2
"Keep all" makes that many).

A ``gr.HTML`` whose script (``object_list.js``) owns its DOM, as the canvas does: the value
(``workbench.segment.values.objects_value``) only brings rows, groups and classes, so the
search text, folded groups, the multi-selection and the scroll position live in the browser
and survive every new value. What it offers, and why:

* from 12 objects on, groups by class (a project) or by name (what "Keep all" names objects),
  each with a count, a fold, select-all and hide/show, so 200 rows read as a handful of
  headers (below that a flat list in the order they were made: one-row groups are noise);
* a search box over names and classes; a list box of bounded height with its own scroll, the
  active row scrolled into view (the page stays the viewport's height);
* per row: colour, name (double-click or the pencil renames), meta, eye (Alt-click: hide all
  others), lock, delete and a check box (shift-click selects a range);
* a bulk bar once one row is checked: hide, show, only these, lock, unlock, set class (in a
  project) and delete (one undo brings them all back).

Events: ``pick_object`` and ``remove_object`` ``{id}``, ``rename_object`` ``{id, name}``,
``bulk_action`` ``{action, ids, class_id}`` (``workbench.event_payloads.bulk_from_event``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent


class SegmentObjectList(gr.HTML):
    """The objects on the image (see the module docstring). Compare keeps the simple
    ``ui.widgets.canvas.ObjectList``: its few model cards need none of this."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template='<div class="ol-host"></div>',
                         css_template=(HERE / "object_list.css").read_text(encoding="utf-8"),
                         js_on_load=(HERE / "object_list.js").read_text(encoding="utf-8"),
                         **kwargs)
