"""The load generator watching itself: how late the event loop wakes, and the CPU it uses.

A greenlet asking to sleep TICK wakes late by however long other code held the loop
(or the kernel held the process): that lateness is `loop_lag`.  A wake-up late by
several ticks also stands for the ticks it missed, each late by that much less (the
HdrHistogram correction for coordinated omission): an 11 s stall is 110 samples, not one.
CPU seconds per wall second over CPU_WINDOW is `cpu`
(in microseconds of CPU per second: 1e6 is one whole core).  Each sample goes to the
part (step, warm-up or measured) in force when it was taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent

TICK = 0.1  # seconds between the event-loop lateness samples
CPU_WINDOW = 1.0  # seconds of wall time per CPU-share sample


def monitor_loop(active: Callable[[], bool], part_now: Callable[[float], Any]) -> None:
    """Forever (a greenlet of the load side): sample while `active()`, into `part_now(t)`."""
    mark = time.monotonic()
    cpu_wall, cpu_used = mark, time.process_time()
    while True:
        gevent.sleep(TICK)
        now = time.monotonic()
        late = max(0.0, now - mark - TICK)
        mark = now
        if not active():
            cpu_wall, cpu_used = now, time.process_time()
            continue
        part = part_now(now)
        missed = late
        while True:  # bounded: `missed` falls by TICK each turn
            part.record("loop_lag", missed * 1e6)
            missed -= TICK
            if missed < TICK:
                break
        if now - cpu_wall >= CPU_WINDOW:
            used = time.process_time()
            part.record("cpu", (used - cpu_used) / (now - cpu_wall) * 1e6)
            cpu_wall, cpu_used = now, used


__all__ = ["CPU_WINDOW", "TICK", "monitor_loop"]
