"""A DirectRoute answers plain requests itself, and leaves anything it does not know to
FastAPI: a dependency it would skip, a request it does not accept, test overrides."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

from bioverify.api.direct_route import DirectRoute

SEEN: list[str] = []


async def gate() -> None:
    SEEN.append("gate")


async def other_gate() -> None:
    SEEN.append("other gate")


async def endpoint(tag: str | None = Header(default=None, max_length=3)) -> JSONResponse:
    return JSONResponse({"via": "fastapi", "tag": tag})


class Route(DirectRoute):
    known_calls = frozenset({gate})
    known_headers = frozenset({"tag"})

    def accepts(self, request: Request) -> bool:
        return request.headers.get("tag") != "no"

    async def direct(self, request: Request) -> Response:
        await gate()
        return JSONResponse({"via": "direct", "tag": request.headers.get("tag")})


def app_with(*router_gates: object) -> FastAPI:
    router = APIRouter()
    router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=Route)
    app = FastAPI()
    app.include_router(router, dependencies=[Depends(g) for g in router_gates])
    return app


def post(app: FastAPI, tag: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/x", headers={"tag": tag})

    return asyncio.run(send())


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def test_known_dependencies_take_the_direct_path() -> None:
    response = post(app_with(gate), "abc")
    assert response.json() == {"via": "direct", "tag": "abc"}
    assert SEEN == ["gate"]


def test_a_request_it_does_not_accept_goes_to_fastapi() -> None:
    response = post(app_with(gate), "no")
    assert response.json() == {"via": "fastapi", "tag": "no"}
    assert SEEN == ["gate"]


def test_an_unknown_router_dependency_turns_the_direct_path_off() -> None:
    response = post(app_with(gate, other_gate), "abc")
    assert response.json() == {"via": "fastapi", "tag": "abc"}
    assert SEEN == ["gate", "other gate"]


def test_dependency_overrides_go_to_fastapi() -> None:
    app = app_with(gate)

    async def overridden() -> None:
        SEEN.append("override")

    app.dependency_overrides[gate] = overridden
    response = post(app, "abc")
    assert response.json() == {"via": "fastapi", "tag": "abc"}
    assert SEEN == ["override"]
