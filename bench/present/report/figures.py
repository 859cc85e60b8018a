"""Report plots (matplotlib, headless): RunData -> figures, rendered to PNG/SVG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from bench.core.journey import TIMED_PHASES, UNKNOWN
from bench.core.outcomes import FAILURE_OUTCOMES
from bench.core.text import quantile_name
from bench.present.plotstyle import OKABE_ITO, OUTCOME_COLOURS, PHASE_COLOURS, RC, figure
from bench.present.report.data import CALL_METRICS, QUANTILES, RunData, StepData
from bench.record.results import SATURATION_SHARE

MAX_Q = 0.9999  # the distribution plot ends at 99.99 %
QUANTILE_COLOURS = dict(zip(QUANTILES, OKABE_ITO, strict=False))
# Dashes on top of colours: percentiles stay apart in greyscale print too.
QUANTILE_STYLES = {0.5: "-", 0.9: "--", 0.99: "-.", 0.999: ":"}


@dataclass(frozen=True)
class Plot:
    """One rendered plot: file stem, title for the page, caption, bytes."""

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes | None = None


def text(value: str) -> str:
    """A string from the results file made safe for matplotlib (no mathtext)."""
    return value.replace("$", r"\$")


def _title(what: str, data: RunData) -> str:
    return text(f"{what}\n{data.target_label}, release {data.release}")


def _sorted_steps(data: RunData) -> list[StepData]:
    return sorted(data.steps, key=lambda s: (s.level, s.index))


def _level_axis(ax: object, data: RunData) -> None:
    """Log2 x axis labelled with the ladder's own levels when the ladder spans > 4x."""
    levels = data.levels
    positive = [lv for lv in levels if lv > 0]
    if positive and max(positive) / min(positive) > 4:
        ax.set_xscale("log", base=2)  # type: ignore[attr-defined]
    ax.xaxis.set_major_locator(FixedLocator(list(levels)))  # type: ignore[attr-defined]
    ax.xaxis.set_minor_locator(NullLocator())  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # type: ignore[attr-defined]
    ax.set_xlabel(data.level_axis)  # type: ignore[attr-defined]


def _plain_log_label(value: float, _: object) -> str:
    # Plain numbers (0.2, 1, 5) instead of matplotlib's 2x10^-1; among the minor
    # ticks only the 2s and 5s are labelled, enough to read a value off without clutter.
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if leading in (1, 2, 5) else ""


def _log_if_wide(ax: object, values: Sequence[float]) -> None:
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # type: ignore[attr-defined]
        ax.yaxis.set_major_formatter(FuncFormatter(_plain_log_label))  # type: ignore[attr-defined]
        ax.yaxis.set_minor_formatter(FuncFormatter(_plain_log_label))  # type: ignore[attr-defined]


def _empty(ax: object, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center",  # type: ignore[attr-defined]
            transform=ax.transAxes, color="#555555")  # type: ignore[attr-defined]


def _legend(ax: object, **kwargs: object) -> None:
    """A legend when there is something to name (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:  # type: ignore[attr-defined]
        ax.legend(**kwargs)  # type: ignore[attr-defined]


def _step_labels(steps: Sequence[StepData]) -> list[str]:
    """Bar labels: the level, plus the step number where a level repeats."""
    counts: dict[float, int] = {}
    for s in steps:
        counts[s.level] = counts.get(s.level, 0) + 1
    return [f"{s.level:g}" if counts[s.level] == 1 else f"{s.level:g}\n(step {s.index + 1})"
            for s in steps]


# --- the plots ----------------------------------------------------------------------


def ready_percentiles(data: RunData) -> Figure:
    fig, ax = figure(layout="constrained")
    steps = [s for s in _sorted_steps(data) if "ready" in s.metrics and s.metrics["ready"].count]
    values: list[float] = []
    for q in QUANTILES:
        xs, ys, lo_x, lo, hi = [], [], [], [], []
        for s in steps:
            stats = s.metrics["ready"]
            v = stats.quantiles[q]
            if v is None:
                continue
            xs.append(s.level)
            ys.append(v / 1e6)
            interval = stats.intervals[q]
            if interval is not None:
                lo_x.append(s.level)
                lo.append(interval[0] / 1e6)
                hi.append(interval[1] / 1e6)
        values += ys + lo + hi
        colour = QUANTILE_COLOURS[q]
        ax.plot(xs, ys, QUANTILE_STYLES[q], marker="o", ms=4, color=colour, label=quantile_name(q))
        if len(lo_x) > 1:
            ax.fill_between(lo_x, lo, hi, color=colour, alpha=0.18, linewidth=0)
        elif lo_x:  # one step: a band needs two points, draw the interval as a bar
            mid = ys[xs.index(lo_x[0])]
            ax.errorbar(lo_x, [mid], yerr=[[mid - lo[0]], [hi[0] - mid]], fmt="none",
                        color=colour, capsize=3)
    slo = data.capacity.slo
    ax.axhline(slo.ready_limit_s, color="#555555", lw=1, ls=(0, (4, 3)),
               label=f"SLO: {quantile_name(slo.ready_quantile)} <= {slo.ready_limit_s:g} s")
    if data.capacity.level is not None:
        ax.axvline(data.capacity.level, color=OKABE_ITO[2], lw=1.2,
                   label=f"capacity at SLO: {data.capacity.level:g}")
    if data.knee is not None:
        ax.axvline(data.knee, color=OKABE_ITO[4], lw=1.2, ls="--", label=f"knee: {data.knee:g}")
    if not steps:
        _empty(ax, "no session became ready")
    _log_if_wide(ax, [*values, slo.ready_limit_s])
    _level_axis(ax, data)
    ax.set_ylabel("time from create to ready (s)")
    ax.set_title(_title(f"Ready time percentiles vs {data.level_name} (bands: 95 % CI)", data))
    _legend(ax, fontsize=8, ncol=2)
    return fig


def _stacked_bars(
    ax: object,
    steps: Sequence[StepData],
    series: Sequence[tuple[str, list[float], str]],
    data: RunData,
) -> list[float]:
    """One bar per step, `series` (label, heights, colour) stacked; returns the tops.

    All-zero series are left out of the bars and the legend.
    """
    positions = list(range(len(steps)))
    bottom = [0.0] * len(steps)
    for label, heights, colour in series:
        if not any(heights):
            continue
        ax.bar(positions, heights, bottom=bottom, color=colour, label=label,  # type: ignore[attr-defined]
               width=0.7)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(positions, _step_labels(steps))  # type: ignore[attr-defined]
    ax.set_xlabel(data.level_axis)  # type: ignore[attr-defined]
    return bottom


def phases(data: RunData) -> Figure:
    fig, ax = figure(layout="constrained")
    steps = list(data.steps)

    def mean_s(step: StepData, phase: str) -> float:
        stats = step.metrics.get(phase)
        return stats.mean_us / 1e6 if stats and stats.mean_us is not None else 0.0

    # `unknown`: time in answers that named no known phase (drawn only when there is any).
    series = [
        (phase, [mean_s(s, phase) for s in steps], PHASE_COLOURS.get(phase, "#BBBBBB"))
        for phase in (*TIMED_PHASES, UNKNOWN)
    ]
    if not any(_stacked_bars(ax, steps, series, data)):
        _empty(ax, "no phase was timed")
    ax.set_ylabel("mean time in phase (s)")
    ax.set_title(_title(f"Where the time goes: mean time per phase vs {data.level_name}", data))
    _legend(ax, fontsize=8)
    return fig


def failures(data: RunData) -> Figure:
    fig, ax = figure(layout="constrained")
    steps = list(data.steps)
    series = [
        (
            outcome,
            [100.0 * s.outcomes.get(outcome, 0) / s.decided if s.decided else 0.0 for s in steps],
            OUTCOME_COLOURS.get(outcome, "#777777"),
        )
        for outcome in FAILURE_OUTCOMES
    ]
    tops = _stacked_bars(ax, steps, series, data)
    limit = 100.0 * data.capacity.slo.failure_rate_limit
    ax.axhline(limit, color="#555555", lw=1, ls=(0, (4, 3)), label=f"SLO: <= {limit:g} %")
    if not any(tops):
        _empty(ax, "no failures")
    ax.set_ylim(0, max([*tops, limit]) * 1.15 or 1)
    ax.set_ylabel("failed journeys (% of decided)")
    ax.set_title(_title(f"Failure rate by outcome vs {data.level_name}", data))
    _legend(ax, fontsize=8)
    return fig


def throughput(data: RunData) -> Figure:
    fig, (left, right) = figure(ncols=2, figsize=(10.0, 4.4), layout="constrained")
    steps = _sorted_steps(data)
    xs = [s.level for s in steps if s.ready_per_s is not None]
    ys = [s.ready_per_s for s in steps if s.ready_per_s is not None]
    left.plot(xs, ys, marker="o", color=OKABE_ITO[0], label="sessions ready / s")
    fails = [s.failed_per_s or 0.0 for s in steps if s.ready_per_s is not None]
    if any(fails):
        left.plot(xs, fails, marker="x", color=OUTCOME_COLOURS["failed"], label="failed / s")
    _level_axis(left, data)
    left.set_ylabel("sessions per second")
    left.set_ylim(bottom=0)
    left.set_title("Throughput", fontsize=10)
    _legend(left, fontsize=8)

    # Two estimates of W: create -> ready only (what the SLO is about), and the time a
    # client is really busy with a ready journey (until it sees ready, then the release).
    series = [
        ("W = mean ready", OKABE_ITO[0], "o",
         [(s.achieved, s.littles_law_concurrency, s.level) for s in steps]),
        ("W = mean ready seen + release", OKABE_ITO[1], "s",
         [(s.achieved, _client_busy(s), s.level) for s in steps]),
    ]
    points = [(a, p) for _, _, _, pts in series for a, p, _ in pts if p is not None]
    if points:
        top = max(max(a, p) for a, p in points) * 1.1 or 1.0
        right.plot([0, top], [0, top], color="#999999", lw=1, ls="--",
                   label="achieved = throughput x W")
        for label, colour, marker, pts in series:
            shown = [(a, p, t) for a, p, t in pts if p is not None]
            if not shown:
                continue
            right.scatter([a for a, _, _ in shown], [p for _, p, _ in shown], color=colour,
                          marker=marker, zorder=3, label=label)
        for a, p, t in series[0][3]:
            if p is not None:
                right.annotate(f"{t:g}", (a, p), textcoords="offset points", xytext=(4, -10),
                               fontsize=8)
        right.set_xlim(0, top)
        right.set_ylim(0, top)
    else:
        _empty(right, "no session became ready")
    right.set_xlabel("achieved concurrency (mean in-flight)")
    right.set_ylabel("ready/s x W (sessions in flight)")
    right.set_title("Little's law check", fontsize=10)
    _legend(right, fontsize=8)
    fig.suptitle(_title(f"Sessions ready per second vs {data.level_name}", data), fontsize=11)
    return fig


def _client_busy(step: StepData) -> float | None:
    """Ready/s x (mean ready seen + mean release): Little's law with the client's busy time."""
    rate = step.ready_per_s
    seen, release = step.metrics.get("ready_seen"), step.metrics.get("release")
    if rate is None or seen is None or seen.mean_us is None:
        return None
    extra = release.mean_us if release is not None and release.mean_us is not None else 0.0
    return rate * (seen.mean_us + extra) / 1e6


def _q_axis(ax: object) -> None:
    ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]  # 0 % sits at the left edge
    ax.set_xscale("log")  # type: ignore[attr-defined]
    ax.xaxis.set_major_locator(  # type: ignore[attr-defined]
        FixedLocator([1 / (1 - q) for q in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(  # type: ignore[attr-defined]
        FuncFormatter(lambda v, _: f"{(1 - 1 / v) * 100:g} %"))
    ax.set_xlim(1, 1 / (1 - MAX_Q))  # type: ignore[attr-defined]
    ax.set_xlabel("percentile (log scale of 1/(1-q))")  # type: ignore[attr-defined]


def distribution(data: RunData) -> Figure:
    fig, ax = figure(layout="constrained")
    steps = [s for s in _sorted_steps(data) if "ready" in s.metrics and s.metrics["ready"].count]
    cmap = colormaps["cividis"]  # perceptually uniform and colour-vision-deficiency safe
    values: list[float] = []
    for i, s in enumerate(steps):
        xs, ys = [1.0], []
        for q, value in s.metrics["ready"].cumulative:
            # Step curve: the bucket's value holds from the previous fraction to q.
            ys.append(value / 1e6)
            xs.append(1.0 / (1.0 - min(q, MAX_Q)))
            if q >= MAX_Q:
                break
        ys.append(ys[-1])
        values += ys
        colour = cmap(i / max(1, len(steps) - 1) * 0.9)
        ax.step(xs, ys, where="pre", color=colour, lw=1.3,
                label=f"{s.level:g} (n={s.metrics['ready'].count})")
    if steps:
        _legend(ax, title=data.level_name, fontsize=7, title_fontsize=8, ncol=2, loc="upper left")
    else:
        _empty(ax, "no session became ready")
    _q_axis(ax)
    _log_if_wide(ax, values)
    ax.set_ylabel("time from create to ready (s)")
    ax.set_title(_title("Ready time percentile distribution per step", data))
    return fig


def calls(data: RunData) -> Figure:
    fig, ax = figure(layout="constrained")
    steps = _sorted_steps(data)
    values = _p50_p99_lines(ax, steps, CALL_METRICS, marker_size=3)
    if not values:
        _empty(ax, "no API call was timed")
    _log_if_wide(ax, values)
    _level_axis(ax, data)
    ax.set_ylabel("call latency (ms)")
    ax.set_title(
        _title(f"API call latency (create, status poll, release) vs {data.level_name}", data)
    )
    _legend(ax, fontsize=8, ncol=3)
    return fig


def _p50_p99_lines(
    ax: object, steps: Sequence[StepData], metrics: Sequence[str], *, marker_size: float
) -> list[float]:
    """Each metric's p50 (solid) and p99 (dashed) per step, in ms; returns the values drawn."""
    values: list[float] = []
    for colour, metric in zip(OKABE_ITO, metrics, strict=False):
        for q, style in ((0.5, "-"), (0.99, "--")):
            pts = [(s.level, s.metrics[metric].quantiles[q]) for s in steps
                   if metric in s.metrics and s.metrics[metric].quantiles[q] is not None]
            if pts:
                ys = [(v or 0) / 1e3 for _, v in pts]
                values += ys
                ax.plot([x for x, _ in pts], ys, style, marker="o", ms=marker_size,  # type: ignore[attr-defined]
                        color=colour, label=f"{metric} {quantile_name(q)}")
    return values


def timeline(data: RunData) -> Figure:
    fig, (top, bottom) = figure(nrows=2, sharex=True, figsize=(10.0, 5.4), layout="constrained")
    points = data.timeline.points
    t = [p.t_s for p in points]
    draw = "steps-post" if data.timeline.sampled else "default"
    # In the open model the timeline's target is the cap on journeys in flight.
    target_label = "cap (--max-in-flight)" if data.open_model else "target"
    top.plot(t, [p.target for p in points], drawstyle="steps-post", color="#555555",
             lw=1.2, ls="--", zorder=3, label=target_label)
    top.plot(t, [p.in_flight for p in points], drawstyle=draw, color=OKABE_ITO[0],
             label="in flight (achieved)" if data.timeline.sampled else "achieved (step mean)")
    top.set_ylabel("concurrency\n(in-flight requests)")
    top.set_ylim(bottom=0)
    _legend(top, fontsize=8, loc="upper left")
    bottom.plot(t, [p.ready_per_s for p in points], drawstyle=draw, color=OKABE_ITO[2],
                label="ready / s")
    bottom.plot(t, [p.failed_per_s for p in points], drawstyle=draw,
                color=OUTCOME_COLOURS["failed"], label="failed / s")
    if any(p.dropped_per_s for p in points):
        bottom.plot(t, [p.dropped_per_s for p in points], drawstyle=draw,
                    color=OUTCOME_COLOURS["dropped"], label="dropped / s (in flight at the cap)")
    bottom.set_ylabel("journeys per second")
    bottom.set_xlabel("time since run start (s)")
    # After every line: set_ylim ends autoscaling, and a line drawn later is clipped.
    bottom.set_ylim(bottom=0)
    _legend(bottom, fontsize=8, loc="upper left")
    for s in data.steps:  # step boundaries, faint
        for ax in (top, bottom):
            ax.axvline(s.started_s, color="#BBBBBB", lw=0.6, zorder=0)
    if not points:
        _empty(top, "no timeline data")
    source = "" if data.timeline.sampled else " (per-step means: no timeline samples in file)"
    fig.suptitle(_title(f"Run timeline{source}", data), fontsize=11)
    return fig


def generator(data: RunData) -> Figure:
    """The load generator watching itself: how late polls left, and its CPU, per step."""
    fig, (left, right) = figure(ncols=2, figsize=(10.0, 4.4), layout="constrained")
    steps = _sorted_steps(data)
    drawn = False
    for metric, q, style, colour in (
        ("poll_lag", 0.5, "-", OKABE_ITO[0]), ("poll_lag", 0.99, "--", OKABE_ITO[0]),
        ("start_lag", 0.99, "--", OKABE_ITO[1]), ("loop_lag", 0.99, ":", OKABE_ITO[3]),
    ):  # fmt: skip
        pts = [(s.level, s.metrics[metric].quantiles[q]) for s in steps if metric in s.metrics]
        pts = [(x, v / 1e3) for x, v in pts if v is not None]
        if pts:
            drawn = True
            left.plot([x for x, _ in pts], [v for _, v in pts], style, marker="o", ms=4,
                      color=colour, label=f"{metric} {quantile_name(q)}")
    if drawn:
        limit_ms = SATURATION_SHARE * data.poll_interval_s * 1e3
        left.axhline(limit_ms, color="#555555", lw=1, ls=(0, (4, 3)),
                     label=f"saturated above {limit_ms:g} ms (a tenth of the interval)")
        left.set_ylim(bottom=0)
    else:
        _empty(left, "no lag recorded (a results file older than format 3)")
    _side_panel(left, data, "lateness against the schedule (ms)", "How late the generator was")
    cpu = [(s.level, s.metrics["cpu"]) for s in steps if "cpu" in s.metrics]
    cpu = [(x, st) for x, st in cpu if st.count]
    if cpu:
        right.plot([x for x, _ in cpu], [100 * (st.mean_us or 0) / 1e6 for _, st in cpu],
                   marker="o", color=OKABE_ITO[2], label="mean")
        right.plot([x for x, _ in cpu], [100 * (st.quantiles[0.99] or 0) / 1e6 for _, st in cpu],
                   "--", marker="o", color=OKABE_ITO[2], label="p99 of 1 s samples")
        right.axhline(100, color="#555555", lw=1, ls=(0, (4, 3)), label="one whole core")
        right.set_ylim(0, 110)
    else:
        _empty(right, "no CPU samples")
    _side_panel(right, data, "CPU of one load process (% of a core)", "Load process CPU")
    fig.suptitle(_title(f"Load generator health vs {data.level_name}", data), fontsize=11)
    return fig


def _side_panel(ax: Axes, data: RunData, ylabel: str, title: str) -> None:
    """One of two side-by-side panels against the step level: axis, labels, legend."""
    _level_axis(ax, data)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    _legend(ax, fontsize=7)


def connect(data: RunData) -> Figure:
    """--cdp-check: is ready usable?  Connect, first command and navigation times."""
    fig, ax = figure(layout="constrained")
    steps = _sorted_steps(data)
    values = _p50_p99_lines(ax, steps, ("connect", "first_command", "navigate"), marker_size=4)
    if not values:
        _empty(ax, "no connect check in this run (--cdp-check)")
    _log_if_wide(ax, values)
    _level_axis(ax, data)
    ax.set_ylabel("time (ms)")
    ax.set_title(_title(f"Is ready usable? CDP connect check vs {data.level_name}", data))
    _legend(ax, fontsize=8, ncol=3)
    return fig


# name -> (page title, caption, builder).  Captions say how to read each plot.
PLOTS: dict[str, tuple[str, str, Callable[[RunData], Figure]]] = {
    "ready_percentiles": (
        "Ready time percentiles",
        "Time from the create call to the session being ready (midpoint estimate), per "
        "target concurrency.  Bands are distribution-free 95 % confidence intervals of each "
        "percentile (order statistics); no band means too few samples for one.",
        ready_percentiles,
    ),
    "phases": (
        "Time per phase",
        "Mean time in each phase, stacked, per step (means add up; medians would not).  A "
        "phase no poll saw contributes nothing, so short phases read low.",
        phases,
    ),
    "failures": (
        "Failure rate by outcome",
        "Failed journeys as a share of decided journeys (all but aborted), stacked by outcome.",
        failures,
    ),
    "throughput": (
        "Throughput and Little's law",
        "Left: sessions that became ready per second, per step.  Right: Little's law, "
        "throughput x time in system against the achieved concurrency.  With W = the mean "
        "ready time the points sit below the line by the time clients spend after ready "
        "(seeing it at the next poll, releasing); with W = mean ready seen + release they "
        "should sit near it.  Far off the line means counts or timings do not add up "
        "(or many failed journeys kept users busy).",
        throughput,
    ),
    "distribution": (
        "Ready time distribution per step",
        "HDR-style percentile plot: the x axis stretches the tail (log 1/(1-q)) up to 99.99 %; "
        "a curve that turns up sharply at the right has a heavy tail.",
        distribution,
    ),
    "calls": (
        "API call latency",
        "Latency of the create, status-poll and release HTTP calls (p50 solid, p99 dashed).",
        calls,
    ),
    "timeline": (
        "Run timeline",
        "Target and achieved concurrency over the run, and journeys ending ready or failed per "
        "second (and, in the open model, arrivals dropped because --max-in-flight journeys "
        "were in flight).  Grey lines mark step starts.",
        timeline,
    ),
    "generator": (
        "Load generator health",
        "Left: how late polls were sent against their schedule (p50, p99), how late open-model "
        "journeys started, and how late the event loop woke (blocking), per step.  A poll-lag "
        "p99 above a tenth of the poll interval marks a step measured by a saturated "
        "generator: its own lateness reads as the target's latency.  Right: CPU of one load "
        "process (the busiest second per step at p99).  Near one whole core means: fewer "
        "users per worker, more workers (--processes), or a longer --poll-interval.",
        generator,
    ),
    "connect": (
        "CDP connect check",
        "With --cdp-check: after ready, time to open the session's cdp_url websocket (connect), "
        "Browser.getVersion's round trip (first command) and, with --cdp-navigate, opening a "
        "page and loading it (navigate); p50 solid, p99 dashed.",
        connect,
    ),
}

# SVG costs about as much again as the PNG; only the headline plot gets one by default.
DEFAULT_SVG = frozenset({"ready_percentiles"})


def render(fig: Figure, *, svg: bool) -> tuple[bytes, bytes | None]:
    """PNG (and SVG) bytes of a figure, which is then closed."""
    try:
        with plt.rc_context(RC):
            png = io.BytesIO()
            # Constrained layout instead of bbox_inches="tight": tight draws everything
            # twice, and drawing is most of a report's time.
            fig.savefig(png, format="png", metadata={"Software": None})
            svg_bytes = None
            if svg:
                out = io.BytesIO()
                fig.savefig(out, format="svg", metadata={"Date": None})
                svg_bytes = out.getvalue()
    finally:
        plt.close(fig)
    return png.getvalue(), svg_bytes


def plots(data: RunData, *, svg: bool | frozenset[str] = DEFAULT_SVG) -> list[Plot]:
    """Every plot of one run, rendered."""
    out = []
    for name, (title, caption, build) in PLOTS.items():
        want_svg = svg if isinstance(svg, bool) else name in svg
        if name == "timeline" and not data.timeline.sampled:
            caption += (" This results file has no timeline samples, so the timeline is "
                        "drawn from step boundaries: each step's mean concurrency and rates.")
        png, svg_bytes = render(build(data), svg=want_svg)
        out.append(Plot(name, title, caption, png, svg_bytes))
    return out


__all__ = ["PLOTS", "Plot", "plots", "render", "text"]
