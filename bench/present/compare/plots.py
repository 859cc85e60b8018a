"""Overlay plots: both sides against concurrency (with CI bands), distributions per step."""

from __future__ import annotations

from typing import Any

from bench.analyse.stats import Buckets
from bench.present import plotstyle
from bench.present.compare.analysis import Comparison, Row

PLOT_STATISTICS = ("p50", "p99")
_STYLES = {"p50": "-", "p90": "-.", "p99": "--", "mean": ":"}


def _series(rows: list[Row], which: str) -> tuple[list[int], list[float], list[float], list[float]]:
    xs, ys, lo, hi = [], [], [], []
    for r in sorted(rows, key=lambda r: r.concurrency or 0):
        v = r.baseline if which == "baseline" else r.candidate
        ci = r.baseline_ci if which == "baseline" else r.candidate_ci
        if v is None or r.concurrency is None:
            continue
        xs.append(r.concurrency)
        ys.append(plotstyle.seconds(v))
        lo.append(plotstyle.seconds(ci[0] if ci else v))
        hi.append(plotstyle.seconds(ci[1] if ci else v))
    return xs, ys, lo, hi


def metric_against_concurrency(comparison: Comparison, metric: str) -> bytes | None:
    """p50 and p99 of `metric` per level, both sides, 95 % CI bands; PNG bytes."""
    rows = [r for r in comparison.rows if r.metric == metric and r.concurrency is not None]
    if not rows:
        return None
    fig, ax = plotstyle.figure()
    for which, colour in (
        ("baseline", plotstyle.BASELINE_COLOUR), ("candidate", plotstyle.CANDIDATE_COLOUR),
    ):
        for stat in PLOT_STATISTICS:
            xs, ys, lo, hi = _series([r for r in rows if r.statistic == stat], which)
            if not xs:
                continue
            ax.plot(xs, ys, _STYLES[stat], marker="o", color=colour, label=f"{which} {stat}")
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("target concurrency")
    ax.set_ylabel(f"{metric} (s)")
    ax.set_title(f"{metric}: baseline vs candidate (bands: 95 % CI)")
    ax.legend()
    return plotstyle.png_bytes(fig)


def _cdf(buckets: Buckets) -> tuple[list[float], list[float]]:
    xs, ys, seen = [], [], 0
    for value, count in zip(buckets.values, buckets.counts, strict=True):
        seen += count
        xs.append(plotstyle.seconds(value))
        ys.append(seen / buckets.total)
    return xs, ys


def distributions(comparison: Comparison, metric: str) -> bytes | None:
    """Empirical CDF of `metric` per level, baseline vs candidate; PNG bytes."""
    levels = sorted(lv for (lv, m) in comparison.distributions if m == metric)
    if not levels:
        return None
    cols = min(3, len(levels))
    rows = (len(levels) + cols - 1) // cols
    fig, axes = plotstyle.figure(
        nrows=rows, ncols=cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False
    )
    flat: list[Any] = [ax for line in axes for ax in line]
    for ax, level in zip(flat, levels, strict=False):
        base, cand = comparison.distributions[(level, metric)]
        for which, buckets, colour in (
            ("baseline", base, plotstyle.BASELINE_COLOUR),
            ("candidate", cand, plotstyle.CANDIDATE_COLOUR),
        ):
            if buckets is not None and buckets.total:
                xs, ys = _cdf(buckets)
                ax.step(xs, ys, where="post", color=colour, label=f"{which} (n={buckets.total})")
        ax.set_title(f"concurrency {level}")
        ax.set_xlabel(f"{metric} (s)")
        ax.set_ylabel("fraction <= x")
        ax.legend(fontsize=8)
    for ax in flat[len(levels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return plotstyle.png_bytes(fig)
