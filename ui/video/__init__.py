"""The video view (a tab) and the ``/track`` API: track objects through a clip with SAM 2.1 or
EdgeTAM.

Rooms: ``view`` (layout, wiring), ``handlers`` (events), ``state`` (per-user data),
``values`` (what is shown), ``services`` (trackers and lanes shared by the app),
``compare`` (two models side by side), ``exports`` (downloads), ``api`` (``/track``).
"""
