"""The concurrency ladder as a Locust LoadTestShape: steps, then a graceful drain, then stop."""

from __future__ import annotations

from locust import LoadTestShape

from bench.measure.plugin import coordinator


class LadderShape(LoadTestShape):
    """Holds each ladder level for --step-time, then ramps to 0 and waits for the drain.

    Ramping to 0 (rather than returning None at once) lets in-flight journeys finish
    under Locust's graceful stop timeout and lets workers ship their last deltas
    before the master quits: a headless master waits only 0.5 s for workers.
    """

    use_common_options = False

    def tick(self) -> tuple[int, float] | None:
        h = coordinator()
        ladder = h.config.ladder
        run = h.run
        if run is None or h.state.finalised:
            # Locust ticks once before test_start fires: this first tick starts the
            # run (test_start then enters step 0); nothing else is begun here.
            return ladder.levels[0], _rate(ladder.levels[0])
        index = ladder.step_at(self.get_run_time())
        if not h.state.draining and (index is None or h.should_stop_ladder()):
            h.begin_drain()
        if h.state.draining:
            return None if h.drained() else (0, 1000.0)
        assert index is not None
        target = ladder.levels[index]
        if not run.steps or run.steps[-1].index != index:
            h.enter_step(index, target)
        return target, _rate(target)


def _rate(target: int) -> float:
    # Start a step's users together (each journey's first poll is jittered); the open
    # model's users are idle slots waiting for arrivals, so they are there within 0.1 s.
    return float(max(target, 1) * 10)
