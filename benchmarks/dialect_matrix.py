"""The harness against every simulator dialect: the matrix the README and docs/reliability.md show.

For each bundled `dialect-*` profile, one real run (4 users, 2.5 s, 10 ms polls, the
fast time scale) and a row: outcomes, exit code, sessions the results call not
confirmed ended (left alive + leaked) against the sessions of the run the simulator
still holds alive, foreign sessions ended, and requests that carried the key to
another origin.  tests/test_dialect_matrix.py asserts the same runs.

    .venv/bin/python benchmarks/dialect_matrix.py [--only dialect-mix,...] [--harness DIR]

--harness DIR runs another checkout's harness (DIR/.venv, DIR/locustfiles) against
this simulator, e.g. the harness as it was before the dialects:
    git worktree add /tmp/before a215844 && make -C /tmp/before setup
    .venv/bin/python benchmarks/dialect_matrix.py --harness /tmp/before
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dialect_runs import run_dialect  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated profiles (default: all)")
    parser.add_argument("--harness", type=Path, default=None,
                        help="another checkout whose harness to run (default: this one)")
    args = parser.parse_args()
    profiles = sorted(p.stem for p in (ROOT / "bench/simulator/profiles").glob("dialect-*.toml"))
    if args.only:
        profiles = [p for p in profiles if p in args.only.split(",")]
    print("| dialect | outcomes | exit | not confirmed ended (claimed) | alive (truth) "
          "| foreign ended | key to other origin |")
    print("|---|---|---|---|---|---|---|")
    for profile in profiles:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_dialect(profile, Path(tmp) / "run", harness=args.harness)
        doc, counters = result.run.doc, result.counters
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.run.outcomes.items()))
        claimed = doc["cleanup"]["leaked"]
        print(
            f"| {profile.removeprefix('dialect-')} | {outcomes} | {result.run.code} | {claimed} "
            f"| {counters['live_sessions']} | {counters['foreign']['ended']} "
            f"| {counters['other_origin']['with_api_key']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
