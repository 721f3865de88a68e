"""The package's public surface is exactly what ``__all__`` promises."""

from __future__ import annotations

from bioverify import webhooks


def test_every_exported_name_exists_and_is_documented() -> None:
    assert sorted(webhooks.__all__) == sorted(set(webhooks.__all__))
    for name in webhooks.__all__:
        member = getattr(webhooks, name)
        assert member.__doc__, f"{name} has no docstring"


def test_no_public_name_is_left_out_of_all() -> None:
    public = {
        name
        for name, value in vars(webhooks).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("bioverify.webhooks")
    }
    assert public <= set(webhooks.__all__)
