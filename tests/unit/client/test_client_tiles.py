"""Receipts built from the public C2SP tlog-tiles: the proofs equal the server's, and a
wrong tile fails verification. The tiles are laid out here, from the leaves, by the
tlog-tiles rules (independently of both the SDK and the server's tile code)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit import merkle, note
from bioverify_client import AsyncClient, Client, ReceiptVerificationError, verify_receipt
from bioverify_client.tiles import (
    TiledTree,
    TileProofError,
    inclusion_proof,
    required_tiles,
    tile_path,
)

ORIGIN, NAME = "bioverify/test", "bioverify"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
X = base64.urlsafe_b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
JWKS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X.rstrip(b"=").decode()}]}


def leaves_of(size: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(size)]


def tiles_of(leaves: list[bytes]) -> dict[tuple[int, int], list[bytes]]:
    """Every tile of the tree: level L holds the hashes of complete 256**L-leaf subtrees."""
    out: dict[tuple[int, int], list[bytes]] = {}
    level = 0
    while 256**level <= len(leaves):
        span = 256**level
        nodes = [
            merkle.root_from_leaf_hashes(leaves[k * span : (k + 1) * span])
            for k in range(len(leaves) // span)
        ]
        for n in range(0, len(nodes), 256):
            out[(level, n // 256)] = nodes[n : n + 256]
        level += 1
    return out


def fetcher(leaves: list[bytes]) -> Callable[[int, int, int], bytes]:
    tiles = tiles_of(leaves)

    def fetch(level: int, index: int, width: int) -> bytes:
        hashes = tiles[(level, index)]
        assert width <= len(hashes), "the SDK asked for hashes the tree does not have"
        return b"".join(hashes[:width])

    return fetch


def test_tile_paths_follow_the_spec() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 0, 7) == "tile/2/000.p/7"
    assert tile_path(1, 1000) == "tile/1/x001/000"


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 1100), data=st.data())
def test_proofs_from_tiles_equal_the_servers(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, TiledTree(size, fetcher(leaves)))
    assert proof == merkle.inclusion_proof(index, size, leaves)


def test_a_large_tree_needs_few_tiles() -> None:
    size = 70_000  # three levels of tiles
    leaves = leaves_of(size)
    for index in (0, 255, 256, 65_535, 65_536, 69_999):
        proof = inclusion_proof(index, TiledTree(size, fetcher(leaves)))
        assert proof == merkle.inclusion_proof(index, size, leaves)
        assert len(required_tiles(index, size)) <= 6
    with pytest.raises(TileProofError):
        required_tiles(size, size)


def served_log(size: int, corrupt: bool = False) -> httpx.MockTransport:
    leaves = leaves_of(size)
    checkpoint = note.sign_checkpoint(ORIGIN, size, merkle.root_from_leaf_hashes(leaves), KEY, NAME)
    fetch = fetcher(leaves)

    def handler(request: httpx.Request) -> httpx.Response:
        assert "x_api_key" not in request.headers  # public routes: no credentials sent
        path = request.url.path
        if path == "/v2/audit/tlog/checkpoint":
            return httpx.Response(200, text=checkpoint)
        found = re.fullmatch(r"/v2/audit/tlog/tile/(\d+)/((?:x\d{3}/)*\d{3})(?:\.p/(\d+))?", path)
        assert found, path
        index = int(found.group(2).replace("x", "").replace("/", ""))
        body = fetch(int(found.group(1)), index, int(found.group(3) or 256))
        if corrupt and found.group(1) == "0":
            body = hashlib.sha256(body).digest() + body[32:]
        return httpx.Response(200, content=body)

    return httpx.MockTransport(handler)


def test_client_builds_a_receipt_that_verify_receipt_accepts() -> None:
    size, index = 600, 300
    with Client("http://bv.test", api_key="k", transport=served_log(size)) as sdk:
        receipt = sdk.tlog_receipt(index)
    verify_receipt(receipt, leaves_of(size)[index], JWKS, NAME, ORIGIN)
    with Client("http://bv.test", api_key="k", transport=served_log(size, corrupt=True)) as sdk:
        wrong = sdk.tlog_receipt(index)
    with pytest.raises(ReceiptVerificationError):
        verify_receipt(wrong, leaves_of(size)[index], JWKS, NAME, ORIGIN)


def test_async_client_builds_the_same_receipt() -> None:
    async def build() -> dict[str, object]:
        async with AsyncClient("http://bv.test", api_key="k", transport=served_log(77)) as sdk:
            return await sdk.tlog_receipt(76)

    receipt = asyncio.run(build())
    with Client("http://bv.test", api_key="k", transport=served_log(77)) as sdk:
        assert receipt == sdk.tlog_receipt(76)
    verify_receipt(receipt, leaves_of(77)[76], JWKS, NAME, ORIGIN)
