"""The package's public surface is exactly what ``__all__`` says."""

from __future__ import annotations

import bioverify


def test_all_names_exist_and_are_exported() -> None:
    assert len(bioverify.__all__) == len(set(bioverify.__all__))
    for name in bioverify.__all__:
        assert hasattr(bioverify, name), name


def test_public_names_are_listed() -> None:
    public = {n for n in vars(bioverify) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(bioverify, n)).__name__ == "module"}
    helpers = {"annotations", "version", "PackageNotFoundError"}
    assert public - modules - helpers == set(bioverify.__all__) - {"__version__"}


def test_version_is_known() -> None:
    assert bioverify.__version__ != "0+unknown"
