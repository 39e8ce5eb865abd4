"""The Gradio user interface of the Segment Anything workbench.

Layers: ``sam_backends`` (models, no Gradio) <- pure UI logic (``objects``, ``inference``,
``render``, ``exports``; no Gradio, no torch) <- Gradio wiring (``canvas``, ``segment``,
``models_panel``, ``api``). ``app.build_demo`` assembles the tabs around one ``AppContext``.

Nothing here imports torch: the engine imports it lazily when a SAM model is loaded.
"""
