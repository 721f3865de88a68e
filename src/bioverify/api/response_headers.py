"""Headers every answer carries: no caching of API data, no MIME sniffing.

API answers hold session state, results and audit data: ``Cache-Control: no-store``
keeps them out of browser and proxy caches. A route that chose its own caching
(the capture page's assets, the docs' assets) keeps its choice.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseHeadersMiddleware:
    """Adds ``Cache-Control: no-store`` (unless set) and ``X-Content-Type-Options``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["ResponseHeadersMiddleware"]
