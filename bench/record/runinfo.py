"""Run identity and the metadata that makes a results file trustworthy (pyperf-style)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import bench


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC timestamp plus a random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def git_revision(cwd: Path | None = None) -> str | None:
    """The harness checkout's commit, when it is one (and git is there)."""
    root = cwd or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_metadata() -> dict[str, Any]:
    try:
        import locust

        locust_version = locust.__version__
    except Exception:  # pragma: no cover - Locust is a dependency
        locust_version = None
    return {
        "harness_version": bench.__version__,
        "locust_version": locust_version,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "git_revision": git_revision(),
        "argv": [a for a in sys.argv[1:]],
    }
