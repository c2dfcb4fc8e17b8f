"""Paired timing: calls measured in alternation, so that the machine's noise hits all alike."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved_medians(calls: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each of ``calls`` over ``rounds`` rounds, each round calling
    every one once in turn, after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
