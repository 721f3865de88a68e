"""How fast the ``bioverify`` command starts: prints numbers and an in-run baseline.

Runs ``bioverify --help``, ``bioverify clients --help`` and a usage error
(``bioverify clients create`` without ``--name``) as fresh processes, interleaved
with the baseline ``python -c pass`` (the interpreter's own start, same machine, same
moment), and reports medians of wall time and of CPU time (user + system). The goal
is judged on CPU time: on an idle machine wall time is CPU time plus a few
milliseconds, while on a shared, loaded one (seven builds on two cores) wall time
mostly measures the queue for a core. Both are printed.

    python bench/cli_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.3  # API.md section 6 / issue 13: --help and `clients ...` start within 0.3 s


def _bioverify() -> list[str]:
    script = Path(sys.executable).with_name("bioverify")
    if script.exists():
        return [str(script)]
    found = shutil.which("bioverify")
    if found is None:
        raise SystemExit("bioverify is not installed in this environment (make test bootstraps it)")
    return [found]


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    cli = _bioverify()
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "bioverify --help": [*cli, "--help"],
        "bioverify clients --help": [*cli, "clients", "--help"],
        "bioverify clients create (usage error)": [*cli, "clients", "create"],
    }
    env_note = f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    print(f"CLI start-up, {args.runs} runs each, interleaved ({env_note})")
    for argv in cases.values():  # warm the page cache once
        _run(argv)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            wall, cpu = _run(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base_wall = statistics.median(walls["python -c pass (baseline)"])
    for name in cases:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        print(
            f"  {name:<40} wall {wall * 1000:7.1f} ms  cpu {cpu * 1000:7.1f} ms  "
            f"({wall / base_wall:5.1f}x baseline wall)"
        )
    for goal, name in (
        ("cli_help_start_s", "bioverify --help"),
        ("cli_clients_start_s", "bioverify clients --help"),
    ):
        cpu = statistics.median(cpus[name])
        ratio = cpu / statistics.median(cpus["python -c pass (baseline)"])
        status = "met" if cpu <= GOAL_S else "NOT met"
        print(f"  {name}: {ratio:.1f}x the CPU time of python -c pass in this run")
        print(f"GOAL {goal} {cpu:.3f} {GOAL_S} {status}")


if __name__ == "__main__":
    main()
