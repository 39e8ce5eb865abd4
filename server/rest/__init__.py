"""The REST API for programs and agents, served beside the UI on the same server.

``/healthz`` and ``/readyz`` at the root, everything else under ``/v1`` (its own FastAPI app,
with the OpenAPI schema at ``/v1/openapi.json`` and docs at ``/v1/docs``). Routes stay thin:

* ``schemas``: the strict request/response models (the contract);
* ``security``: API keys (hashed, scoped), bearer parsing, per-key and per-address limits;
* ``service``: the work behind the routes (decode images, segment, render outputs);
* ``jobs``: background jobs with progress and cancellation;
* ``app``: the routes and error handlers, and how they are mounted into Gradio's server.
"""
