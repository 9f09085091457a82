"""Durations on two clocks, and how the benchmark prints and compares them.

Which clock the JSON ratios use: "cpu" = time.thread_time() (CPU time of this thread; the
subprocess's time.process_time() for cold start): the in-process engine does no I/O, so on an
idle machine it equals wall time, and it does not count time the scheduler gives to other
processes on a shared machine. "wall" = time.perf_counter(). Both are always printed.
"""

from __future__ import annotations

import statistics
import time

CLOCK = "cpu"  # bench/run.py --clock sets it


def stamp() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    kept = ordered[k:len(ordered) - k] or ordered
    return sum(kept) / len(kept)


class Samples:
    """Durations on both clocks."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.wall.append(end[0] - start[0])
        self.cpu.append(end[1] - start[1])

    def __add__(self, other: Samples) -> Samples:
        out = Samples()
        out.wall = [a + b for a, b in zip(self.wall, other.wall, strict=True)]
        out.cpu = [a + b for a, b in zip(self.cpu, other.cpu, strict=True)]
        return out

    def median(self, clock: str | None = None) -> float:
        return statistics.median(getattr(self, clock or CLOCK))

    def trimmed(self, clock: str | None = None) -> float:
        return trimmed_mean(getattr(self, clock or CLOCK))

    def __len__(self) -> int:
        return len(self.wall)


def both(samples: Samples) -> str:
    return f"cpu {ms(samples.median('cpu'))} / wall {ms(samples.median('wall'))}"


def ratio_both(a: Samples, b: Samples) -> str:
    return f"cpu {a.median('cpu') / b.median('cpu'):.3f} / wall {a.median('wall') / b.median('wall'):.3f}"
