"""What stands between the network and the app: HTTP guards, back-pressure and temp files.

* ``middleware.GuardMiddleware``: body-size limit (413 before reading), security headers,
  refusal of malformed ``Range`` headers and session ids, a friendly 503 when the queue is full;
* ``backpressure.WorkLane``: bounded running/waiting work with immediate "busy" refusals and
  per-request deadlines;
* ``temp_root.TempRoot``: the one folder that holds every temporary file of a running app.

Nothing here imports torch or the engine.
"""
