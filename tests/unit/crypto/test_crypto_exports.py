"""The package's public surface is what ``__all__`` says."""

from __future__ import annotations

from bioverify import crypto


def test_all_names_are_exported_and_public() -> None:
    assert sorted(crypto.__all__) == sorted(set(crypto.__all__))
    for name in crypto.__all__:
        assert not name.startswith("_")
        assert getattr(crypto, name) is not None
    public = {n for n in dir(crypto) if not n.startswith("_")}
    modules = {"datakeys", "envelope", "keyring", "rotation", "models", "sqlstore"}
    assert public - modules == set(crypto.__all__)
