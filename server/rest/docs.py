"""The API's interactive docs (``/v1/docs``), served by the app itself.

FastAPI's default docs page loads Swagger UI from a CDN, so it is blank on a machine without
internet (a laptop on a plane, a cluster without egress, this project's CI). The same Swagger UI
(version 5, which reads the OpenAPI 3.1 document FastAPI writes) ships in the ``swagger-ui-py``
package (Apache-2.0); its files are served from ``/v1/docs-assets/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def swagger_assets() -> Path:
    """The folder of Swagger UI's built files inside the ``swagger-ui-py`` package."""
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


def add_docs(v1: FastAPI, title: str) -> None:
    """``GET /docs`` (the page) and ``/docs-assets/*`` (its scripts and styles) on ``v1``, a
    FastAPI app built with ``docs_url=None``."""
    v1.mount(ASSETS, StaticFiles(directory=swagger_assets()), name="docs-assets")

    @v1.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{v1.openapi_url}", title=f"{title} - docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png")
