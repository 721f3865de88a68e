"""Cost of recording an authentication failure in the in-memory throttle, with few and
with many tracked addresses (security review item 10: 6.2 ms per failure at 150k keys
before the TTL map). The baseline is the same operation at 1,000 keys, in this run.

Goal: recording at 150,000 keys costs at most 2x recording at 1,000 keys.

    .venv/bin/python bench/throttle.py
"""

from __future__ import annotations

import time

from bioverify.accounts.throttle import MemoryFailureThrottle


def per_failure_us(keys: int, samples: int = 20_000) -> float:
    throttle = MemoryFailureThrottle(limit=10, window_s=300)
    for index in range(keys):
        throttle.record_failure(f"ip:{index}")
    started = time.perf_counter()
    for index in range(samples):
        throttle.record_failure(f"ip:new-{index}")
    return (time.perf_counter() - started) / samples * 1e6


def main() -> None:
    small = min(per_failure_us(1_000) for _ in range(3))
    large = min(per_failure_us(150_000) for _ in range(3))
    print(f"record_failure: {small:.2f} us at 1k keys, {large:.2f} us at 150k keys")
    ratio = large / small
    print(f"GOAL throttle_cost_150k_vs_1k {ratio:.3f} <=2 {'met' if ratio <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
