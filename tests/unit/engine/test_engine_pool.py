"""PoolEngine: the async Engine the service awaits, in thread and process modes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from bioverify.engine import Analysis, Engine, LivenessMode, Outcome, PoolEngine
from fixtures_faces import registry_bytes


def _analyze(engine: PoolEngine, frame: bytes) -> Coroutine[Any, Any, Analysis]:
    return engine.analyze(
        [frame],
        liveness=LivenessMode.PASSIVE,
        challenge=None,
        frame_times=None,
        want_portrait=False,
    )


def test_thread_mode_analyzes_without_blocking_the_loop() -> None:
    frame = registry_bytes("astronaut.png")

    async def scenario() -> tuple[Outcome, int]:
        engine = PoolEngine(workers=0)
        assert isinstance(engine, Engine)
        assert engine.ready()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        result = await _analyze(engine, frame)
        tick_task.cancel()
        await engine.close()
        assert not engine.ready()
        return result.outcome, ticks

    outcome, ticks = asyncio.run(scenario())
    assert outcome is Outcome.OK
    assert ticks > 1  # the loop kept running while the frame was analysed


@pytest.mark.slow
def test_process_mode_loads_models_in_the_worker() -> None:
    frame = registry_bytes("t1.jpg")

    async def scenario() -> Outcome:
        engine = PoolEngine(workers=1)
        try:
            await engine.warm_up()
            return (await _analyze(engine, frame)).outcome
        finally:
            await engine.close()

    assert asyncio.run(scenario()) is Outcome.MULTIPLE_FACES
