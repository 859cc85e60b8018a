"""The concurrency ladder as a Locust LoadTestShape: steps, then a graceful drain, then stop."""

from __future__ import annotations

from locust import LoadTestShape

from bench.plugin import harness


class LadderShape(LoadTestShape):
    """Holds each ladder level for --step-time, then ramps to 0 and waits for the drain.

    Ramping to 0 (rather than returning None at once) lets in-flight journeys finish
    under Locust's graceful stop timeout and lets workers ship their last deltas
    before the master quits: a headless master waits only 0.5 s for workers.
    """

    use_common_options = False

    def __init__(self) -> None:
        super().__init__()
        self._step: int | None = None

    def tick(self) -> tuple[int, float] | None:
        h = harness()
        run = h.run
        if run is None:
            return None
        ladder = h.config.ladder
        index = ladder.step_at(self.get_run_time())
        if run.draining_since is None and (index is None or h.should_stop_ladder()):
            h.begin_drain()
        if run.draining_since is not None:
            return None if h.drained() else (0, 1000.0)
        assert index is not None
        target = ladder.levels[index]
        if index != self._step:
            self._step = index
            h.enter_step(index, target)
        # Start a step's users together (the first poll is jittered per journey).
        return target, float(max(target, 1) * 10)

    def reset_time(self) -> None:
        super().reset_time()
        self._step = None
