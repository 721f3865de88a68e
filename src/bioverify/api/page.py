"""The hosted capture page: ``GET /capture/{token}`` and its assets under ``/capture-assets``.

The page is static HTML plus ES modules shipped in the package (``api/static``): no
CDN, no build step, no inline script or style, so a strict Content-Security-Policy
holds. The token never appears in what the server sends back: the page reads it
from its own address and then removes it from the address bar.

The remedy texts come from :data:`bioverify.errors.CATALOGUE` through
``/capture-assets/catalogue.json``, generated at request time, so the page never
restates them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from bioverify.accounts import framing
from bioverify.api.deps import services
from bioverify.errors import CATALOGUE, LEGACY_ALIASES, NotFound
from bioverify.sessions import tokens
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import transaction

router = APIRouter(include_in_schema=False)

PAGE_FILE: Final = "capture.html"
ASSET_PREFIX: Final = "/capture-assets"

#: The page's policy: everything from this origin only, no inline code, no framing,
#: and camera frames shown from blob:/mediastream: sources.
_POLICY_BASE: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors "
)
CONTENT_SECURITY_POLICY: Final = _POLICY_BASE + "'none'"

SECURITY_HEADERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "content-security-policy": CONTENT_SECURITY_POLICY,
        # The capture token is in the page's path: never send it to anyone as a referrer.
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "permissions-policy": "camera=(self), microphone=(), geolocation=(), payment=()",
    }
)

_CONTENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".html": "text/html; charset=utf-8",
    }
)


def _static_root() -> Traversable:
    return resources.files("bioverify.api").joinpath("static")


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, f"{name}/"))
        elif entry.is_file() and any(name.endswith(ext) for ext in _CONTENT_TYPES):
            found[name] = entry
    return found


@functools.cache
def asset_index() -> Mapping[str, Traversable]:
    """Servable asset paths (relative to ``static/``) -> files. Only these are served,
    so no request path can reach outside the folder."""
    files = _walk(_static_root())
    files.pop(PAGE_FILE, None)
    return MappingProxyType(files)


def _content_type(name: str) -> str:
    return next(kind for ext, kind in _CONTENT_TYPES.items() if name.endswith(ext))


def _secured(response: Response, *, cache: str) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["cache-control"] = cache
    return response


def catalogue_document() -> dict[str, object]:
    """What the page needs from the error catalogue: per code, its name, kind,
    retry class, message and remedy (plus the legacy aliases)."""
    return {
        "codes": {
            str(row.code): {
                "name": row.name,
                "kind": str(row.kind),
                "retry": str(row.retry),
                "message": row.message,
                "remedy": row.remedy,
            }
            for row in CATALOGUE.values()
        },
        "aliases": {str(alias): code for alias, code in LEGACY_ALIASES.items()},
    }


def framing_headers(ancestors: Sequence[str]) -> dict[str, str]:
    """Headers that let exactly ``ancestors`` frame the page and use its camera.

    With no ancestors, the defaults stand: no framing at all. Otherwise
    ``frame-ancestors`` names exactly those origins, ``X-Frame-Options`` is dropped
    (it cannot name origins, and DENY would override the CSP in old browsers), and
    ``Permissions-Policy`` delegates the camera to them.
    """
    if not ancestors:
        return {}
    quoted = " ".join(f'"{origin}"' for origin in ancestors)
    return {
        "content-security-policy": _POLICY_BASE + " ".join(ancestors),
        "permissions-policy": f"camera=(self {quoted}), microphone=(), geolocation=(), payment=()",
        # A parent page that isolates itself (COEP) may still embed the page.
        "cross-origin-resource-policy": "cross-origin",
    }


def _page(ancestors: Sequence[str] = ()) -> Response:
    html = _static_root().joinpath(PAGE_FILE).read_bytes()
    # no-store: the page is reached through a one-session secret URL.
    response = _secured(Response(html, media_type="text/html; charset=utf-8"), cache="no-store")
    framing = framing_headers(ancestors)
    if framing:
        del response.headers["x-frame-options"]
        response.headers.update(framing)
    return response


def _ancestors_for(request: Request, token: str) -> list[str]:
    """The frame ancestors of the session's client, for a valid capture link only."""
    parsed = tokens.parse(token)
    if parsed is None:
        return []
    try:
        with transaction(services(request).factory) as db:
            row = db.scalar(select(SessionRow).where(SessionRow.id == parsed[0]))
            if row is None or not tokens.secret_matches(parsed[1], row.token_hash):
                return []
            return framing.ancestors_of(db, row.client_id)
    except SQLAlchemyError:
        # Fail closed: without the store the page is served unframeable (and its
        # session load will say the service is unavailable).
        return []


@router.get("/capture/")
async def capture_page_without_token() -> Response:
    """The page after it removed the token from the address bar (e.g. on reload):
    it explains that the link must be opened again."""
    return _page()


@router.get("/capture/{token}")
async def capture_page(request: Request, token: str) -> Response:
    """The hosted capture page; its script reads ``token`` from the address.

    The token is never echoed; it only selects the framing policy of the session's
    client (who may embed the page in an iframe).
    """
    return _page(await run_in_threadpool(_ancestors_for, request, token))


@router.get(f"{ASSET_PREFIX}/catalogue.json")
async def catalogue() -> Response:
    """The error catalogue's user-facing texts, generated from the code's one source."""
    return _secured(JSONResponse(catalogue_document()), cache="no-cache")


@router.get(ASSET_PREFIX + "/{path:path}")
async def asset(path: str) -> Response:
    """A static file of the page (scripts, styles, translations)."""
    entry = asset_index().get(path)
    if entry is None:
        raise NotFound("No such capture page asset")
    return _secured(Response(entry.read_bytes(), media_type=_content_type(path)), cache="no-cache")


__all__ = [
    "ASSET_PREFIX",
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "asset_index",
    "catalogue_document",
    "framing_headers",
    "router",
]
