"""A tiny HTTP server on 127.0.0.1 serving one file and a redirect to it, for the URL-fetching
tests (images and clips alike; nothing leaves the machine)."""

from __future__ import annotations

import http.server
import threading


class OneFileServer:
    """``/<name>`` answers ``body`` as ``media_type``; ``/redirect`` answers 302 to it; any
    other path 404. ``port`` is the port chosen; ``close()`` stops it."""

    def __init__(self, name: str, body: bytes, media_type: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", f"/{name}")
                    self.end_headers()
                    return
                self.send_response(200 if self.path == f"/{name}" else 404)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
