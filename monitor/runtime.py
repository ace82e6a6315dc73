"""Process-wide tuning for long runs; holds no state of the monitor's own.

The engine allocates millions of small, long-lived objects (customer states,
counters). Python's default cyclic-GC threshold (700 allocations) makes the
collector rescan them constantly; measured at about 1.5 us per event.
"""

from __future__ import annotations

import gc

__all__ = ["engine_build", "tune_gc"]


def tune_gc() -> None:
    """Collect the young generation less often; cycles are rare in the engine.

    Objects made before this call (modules, classes, settings) move to the
    permanent generation, out of every later collection. The young count is of
    containers made and still alive, so it grows with new customers (three or
    four each) and hardly at all with events. A young threshold of 1,000,000
    against Python's 2,000: a replay of 1,000,000 events of 100,000 new
    customers ran no collection (with 50,000, 12 taking 0.25 s; with 200,000,
    2 taking 0.14 s of 4.9 s).
    """
    gc.freeze()
    gc.set_threshold(1_000_000, 20, 100)


def engine_build() -> str:
    """Say whether the engine runs compiled (mypyc, see setup.py) or plain."""
    from monitor.engine import core

    return "plain Python" if core.__file__.endswith(".py") else "compiled (mypyc)"
