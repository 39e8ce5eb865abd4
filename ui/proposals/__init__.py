"""Many objects at once: "segment everything" and text prompts, as proposals a person keeps.

* ``logic``: proposals as values (threshold, toggling, keeping them as segment-view objects);
* ``review`` / ``matching``: pictures of proposals; matching instances across models;
* ``engines``: the one call path into ``sam_backends.automatic`` and ``sam_backends.text``;
  the loaded OWLv2 detectors live in the app's ``ctx.services`` (``workbench.services``: a
  bounded cache keyed by configuration, never by user);
* ``panel`` (segment view), ``compare_panel`` (compare view), ``api`` (named endpoints).

Gradio-facing names are imported from their modules (``from ui.proposals.panel import
build_proposals_panel``) so that importing the pure parts never loads Gradio.
"""
