"""`bench run`: a whole headless benchmark in one command (Locust child, report, gates, compare).

Modules: options (arguments -> validated RunOptions), command (the Locust argv,
pure), execute (the child process: streamed output, watchdog, signals), post
(results -> report, thresholds, comparison, summary.md, exit code), pipeline (the
sequence).  Exit codes are documented in bench/run/post.py.
"""

from bench.run.arguments import RunOptions, add_arguments, options
from bench.run.pipeline import run
from bench.run.post import LOCUST_FAILED

__all__ = ["LOCUST_FAILED", "RunOptions", "add_arguments", "options", "run"]
