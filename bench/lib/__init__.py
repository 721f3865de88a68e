"""Helpers shared by the bench scripts; not benchmarks (make bench runs bench/*.py)."""
