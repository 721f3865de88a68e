"""``/docs``: Swagger UI served from this server, with no script from a CDN.

FastAPI's default page loads Swagger UI's script and style from a CDN without
subresource integrity, so whoever controls that CDN could run script on this
origin. The same files ship in the ``swagger-ui-bundle-v2`` wheel (Apache-2.0);
they are served here from the installed package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from bioverify.errors import NotFound

ASSETS_PREFIX: Final = "/docs/assets"
_ASSETS_DIR: Final = Path(swagger_ui_bundle.swagger_ui_path)
#: Only what the page loads is served (no source maps, no other files).
_SERVED: Final = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs_page(request: Request) -> HTMLResponse:
    title = f"{request.app.title} - docs"
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=title,
        swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PREFIX}/favicon-32x32.png",
    )


@router.get(ASSETS_PREFIX + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    if name not in _SERVED:
        raise NotFound("No such docs asset")
    return FileResponse(_ASSETS_DIR / name, headers={"cache-control": "public, max-age=3600"})


__all__ = ["ASSETS_PREFIX", "router"]
