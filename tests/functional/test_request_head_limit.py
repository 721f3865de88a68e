"""The server bounds the size of a request's head (review item 11): a huge header is
refused with 431 and the error envelope, and other requests are not slowed by it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from bioverify.api.http_protocol import MAX_HEAD_BYTES
from support import LiveServer


def _raw_request(port: int, head_size: int) -> bytes:
    """Send a GET with one header of ``head_size`` bytes; what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < head_size:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed on us: read what it said
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        return answer


def test_a_huge_header_is_refused_with_431(make_app: Callable[..., FastAPI]) -> None:
    with LiveServer(make_app()) as server:
        answer = _raw_request(server.port, 16 * 1024 * 1024)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431")
        envelope = json.loads(body)
        assert envelope["status"] == "error" and str(MAX_HEAD_BYTES) in envelope["message"]
        # A normal request with headers under the limit is served as before.
        ok = httpx.get(f"{server.url}/healthz", headers={"x-fine": "b" * (MAX_HEAD_BYTES // 2)})
        assert ok.status_code == 200
