"""A FastAPI route that answers its common requests without per-request dependency solving.

FastAPI resolves a route's dependency tree on every request: for the create route
(the readiness gate, four credential headers that only document ``/docs``, and the
``Idempotency-Key`` header) that was about a quarter of the event loop's time per
create, more than the route's own work there. A :class:`DirectRoute` keeps the
declared route (the OpenAPI document is FastAPI's, unchanged) and, per request:

- if :meth:`DirectRoute.accepts` says the request is a plain one, calls
  :meth:`DirectRoute.direct`, which must do what the dependencies would have done
  (the gate first) and then what the endpoint does;
- otherwise it runs FastAPI's own handler (validation errors, overrides in tests).

It fails safe: when the route's dependencies, router-level ones included, are not
exactly those the subclass names in ``known_calls`` and ``known_headers``, it never
takes the direct path (someone added a dependency it would skip).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar

from fastapi import routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

#: Newer FastAPI resolves an included route (with the router's dependencies) in this
#: context instead of copying it; older versions copy, and ``self.dependant`` is it.
_route_context: ContextVar[Any] | None = getattr(routing, "_effective_route_context_var", None)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _params(dependant: Dependant) -> Iterator[tuple[str, str]]:
    kinds = ("path", "query", "header", "cookie", "body")
    for kind in kinds:
        for field in getattr(dependant, f"{kind}_params"):
            yield kind, str(field.alias).lower()
    for sub in dependant.dependencies:
        yield from _params(sub)


class DirectRoute(APIRoute):
    """Subclass it with ``known_calls``, ``known_headers``, ``accepts`` and ``direct``."""

    #: Every dependency callable (router-level ones included) the direct path stands in for.
    known_calls: ClassVar[frozenset[Any]] = frozenset()
    #: Header parameters (lower case) the direct path reads itself.
    known_headers: ClassVar[frozenset[str]] = frozenset()

    def accepts(self, request: Request) -> bool:
        """True for a request the direct path answers exactly as FastAPI would."""
        raise NotImplementedError

    async def direct(self, request: Request) -> Response:
        """The dependencies' work, then the endpoint's; the route's answer."""
        raise NotImplementedError

    def _effective_dependant(self) -> Dependant:
        context = _route_context.get() if _route_context is not None else None
        if context is not None and getattr(context, "original_route", None) is self:
            dependant: Dependant = context.dependant
            return dependant
        return self.dependant

    def _only_known(self, dependant: Dependant) -> bool:
        calls = set(_calls(dependant))
        params = set(_params(dependant))
        return calls <= self.known_calls and params <= {("header", h) for h in self.known_headers}

    def get_route_handler(self) -> Handler:
        full = super().get_route_handler()
        if not self._only_known(self._effective_dependant()):
            return full
        accepts, direct = self.accepts, self.direct

        async def handler(request: Request) -> Response:
            if getattr(request.app, "dependency_overrides", None) or not accepts(request):
                return await full(request)
            return await direct(request)

        return handler


__all__ = ["DirectRoute"]
