"""A leaf hash that happens to start with "{" is still taken as a leaf hash."""

from __future__ import annotations

import hashlib

from bioverify.audit.receipt import _leaf


def test_hash_starting_with_a_brace_is_a_hash() -> None:
    for i in range(5000):
        digest = hashlib.sha256(str(i).encode()).digest()
        if digest.startswith(b"{"):
            assert _leaf(digest) == (digest, None)
            return
    raise AssertionError("no digest starting with '{' in 5000 tries")


def test_body_is_parsed_as_a_body() -> None:
    leaf, body = _leaf(b'{"event":"x","index":0}')
    assert body == {"event": "x", "index": 0}
    assert len(leaf) == 32
