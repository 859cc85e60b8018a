"""Pure concurrency-ladder maths: which step a run time falls in, and when a journey is warm-up."""

from __future__ import annotations

from dataclasses import dataclass


class LadderError(ValueError):
    """A ladder that cannot run; the message is one line fit for the user."""


def parse_ladder(text: str) -> tuple[int, ...]:
    """Parse ``"1,2,4,8"`` into positive integer concurrency levels."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise LadderError(f"ladder {text!r}: expected comma-separated integers, e.g. 1,2,4,8")
    levels = []
    for part in parts:
        try:
            level = int(part)
        except ValueError:
            raise LadderError(f"ladder {text!r}: {part!r} is not an integer") from None
        if level < 1:
            raise LadderError(f"ladder {text!r}: every level must be at least 1, got {level}")
        levels.append(level)
    return tuple(levels)


@dataclass(frozen=True)
class Ladder:
    levels: tuple[int, ...]
    step_time: float
    settle: float

    def __post_init__(self) -> None:
        if not self.levels:
            raise LadderError("ladder: at least one step is needed")
        if self.step_time <= 0:
            raise LadderError(f"step time must be positive, got {self.step_time:g}")
        if not 0 <= self.settle < self.step_time:
            raise LadderError(
                f"settle time must be >= 0 and shorter than the step time "
                f"({self.step_time:g} s), got {self.settle:g}"
            )

    @property
    def duration(self) -> float:
        return self.step_time * len(self.levels)

    def step_at(self, run_time: float) -> int | None:
        """The step index in force at `run_time` seconds into the run; None once it is over."""
        if run_time < 0:
            return 0
        index = int(run_time // self.step_time)
        return index if index < len(self.levels) else None

    def is_warmup(self, step_started: float, now: float) -> bool:
        """Whether a journey starting at `now` falls in the settle period of its step."""
        return now - step_started < self.settle
