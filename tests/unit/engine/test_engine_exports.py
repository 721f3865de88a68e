"""The engine's public surface is exactly what ``__all__`` lists."""

from __future__ import annotations

from bioverify import engine


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {name for name in dir(engine) if not name.startswith("_")}
    modules = {
        "burst_layout",
        "clip_features",
        "decode",
        "evaluation",
        "facemesh",
        "frames",
        "gallery",
        "interfaces",
        "liveness",
        "liveness_attacks",
        "liveness_data",
        "liveness_eval",
        "matcher",
        "meshpose",
        "models",
        "passive",
        "pipeline",
        "pool",
        "pose",
        "quality",
        "samples",
    }
    assert set(engine.__all__) == public - modules
    for name in engine.__all__:
        assert getattr(engine, name) is not None
