"""One look for every plot: colour-blind-safe palette, units, and headless matplotlib."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are made on CI machines with no display

import matplotlib.pyplot as plt

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common
# colour-vision deficiency.  Order matters: the first colours go to the main series.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

# Fixed colours per meaning, so a phase or outcome looks the same in every plot.
PHASE_COLOURS = {
    "queued": OKABE_ITO[5], "provisioning": OKABE_ITO[0], "configuring": OKABE_ITO[1],
    "unknown": "#BBBBBB",  # time in answers that named no known phase
}  # fmt: skip
OUTCOME_COLOURS = {
    "failed": OKABE_ITO[3],
    "create_rejected": OKABE_ITO[1],
    "timeout": OKABE_ITO[4],
    "cancelled": OKABE_ITO[5],
    "completed_before_ready": OKABE_ITO[6],
    "create_error": OKABE_ITO[7],
    "poll_error": OKABE_ITO[2],
    "protocol_error": "#999999",
    "connect_error": "#882255",
    "navigate_error": "#AA4499",
    "aborted": "#CCCCCC",
    "dropped": "#444444",
}
BASELINE_COLOUR = OKABE_ITO[7]
CANDIDATE_COLOUR = OKABE_ITO[3]

RC = {
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.frameon": False,
    "svg.hashsalt": "async-session-bench",  # stable SVG ids: reproducible files
}


def figure(**kwargs: Any) -> tuple[Any, Any]:
    """A new figure and axes in the house style."""
    with plt.rc_context(RC):
        return plt.subplots(**kwargs)


def seconds(us: float) -> float:
    return us / 1_000_000.0


def png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    with plt.rc_context(RC):
        fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def save(fig: Any, path_without_suffix: Any, *, svg: bool = False) -> list[Any]:
    """Write the figure as PNG (and SVG); returns the paths written."""
    from pathlib import Path

    base = Path(path_without_suffix)
    written = []
    with plt.rc_context(RC):
        png = base.with_suffix(".png")
        fig.savefig(png, bbox_inches="tight", metadata={"Software": None})
        written.append(png)
        if svg:
            out = base.with_suffix(".svg")
            fig.savefig(out, bbox_inches="tight", metadata={"Date": None})
            written.append(out)
    plt.close(fig)
    return written
