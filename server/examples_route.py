"""``GET /samwb/examples/{name}``: the example images, by name only.

The gallery of examples points here (``workbench.examples``) so that neither the page nor
``GET /config`` carries a path on the server. Only files that ``list_examples`` lists are
served; any other name is a 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from workbench.context import AppContext
from workbench.examples import EXAMPLES_ROUTE, find_example


def examples_routes(ctx: AppContext) -> list[Route]:
    """The route of the example images for ``FastAPI(routes=...)``."""

    async def example(request: Request) -> Response:
        path = find_example(ctx.config.examples_dir, request.path_params["name"])
        if path is None:
            return JSONResponse({"error": "No example image has this name."}, status_code=404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    return [Route(EXAMPLES_ROUTE + "/{name}", example, methods=["GET", "HEAD"])]
