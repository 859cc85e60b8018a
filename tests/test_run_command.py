"""`bench run` without Locust: options, the exact Locust argv, the child process, exit codes."""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import build_parser, main
from bench.core import exitcodes
from bench.core.errors import UsageError
from bench.run import LOCUST_FAILED, options
from bench.run.arguments import DEFAULT_LOCUSTFILE, FIXED_OPTIONS, HARNESS_OPTIONS
from bench.run.command import child_environment, chooses_master_port, locust_command
from bench.run.execute import Execution, execute, scrub
from bench.run.post import (
    Outcome,
    demote_headings,
    final_exit_code,
    run_exit_code,
    summary_markdown,
    write_summary,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "run"
KEY = "canary-key-7f3a9c1e-never-print"
SMALL = ROOT / "tests" / "fixtures" / "results" / "v1-small.json"


def run_help() -> str:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subcommands.choices["run"].format_help()


def parse(*argv: str, environ: dict[str, str] | None = None):
    args = build_parser().parse_args(["run", *argv])
    return options(args, environ or {})


def test_simulator_command_line_is_exact():
    opts = parse("--ladder", "1,2", "--step-time", "2", "--settle", "0.2",
                 "--sim-profile", "fast", "--release", "r1")  # fmt: skip
    argv = locust_command(opts, Path("out/r1/RUN"), "/py")
    assert argv == [
        "/py", "-m", "locust", "-f", str(DEFAULT_LOCUSTFILE),
        "--headless", "--only-summary",
        "--csv", "out/r1/RUN/locust",
        "--results-dir", "out/r1/RUN",
        "--run-id", "RUN",
        "--no-report",
        "--ladder=1,2", "--step-time=2", "--settle=0.2",
        "--release=r1", "--sim-profile=fast",
    ]  # fmt: skip


def test_remote_distributed_command_line_is_exact():
    opts = parse(
        "--host", "https://staging.example.com", "--max-sessions", "40",
        "--poll-interval", "0.5", "--journey-log", "--expect-workers", "3",
        "--master-bind-host", "0.0.0.0", "--progress-interval", "30",
        environ={"ANCHOR_API_KEY": KEY},
    )  # fmt: skip
    argv = locust_command(opts, Path("r"), "py")
    assert argv[argv.index("--no-report") + 1 :] == [
        "--poll-interval=0.5", "--max-sessions=40", "--journey-log",
        "--progress-interval=30", "--release=unlabelled",
        "--host", "https://staging.example.com",
        "--master", "--expect-workers", "3",
        "--master-bind-host", "0.0.0.0", "--master-bind-port", "5557",
    ]  # fmt: skip
    assert KEY not in " ".join(argv)
    assert opts.reports_dir / opts.release == Path("reports/unlabelled")


def test_processes_and_extra_locust_arguments_pass_through():
    argv = locust_command(parse("--processes", "2"), Path("r"), "py")
    assert argv[-2:] == ["--processes", "2"]
    argv = locust_command(parse("--processes", "2"), Path("r"), "py", master_port=40123)
    assert argv[argv.index("--processes") :] == [
        "--processes", "2", "--master-bind-host", "127.0.0.1",
        "--master-bind-port", "40123", "--master-port", "40123",
    ]  # fmt: skip
    # The "=" form: argparse would take a separate "--loglevel=DEBUG" for an option.
    extra = parse("--locust-arg=--client-timeout=5", "--locust-arg=--loglevel=DEBUG")
    assert locust_command(extra, Path("r"), "py")[-2:] == ["--client-timeout=5", "--loglevel=DEBUG"]


def test_the_key_is_handed_to_locust_only_for_a_real_host():
    environ = {"ANCHOR_API_KEY": KEY, "PATH": "/bin"}
    simulated = child_environment(parse(), environ)
    assert "ANCHOR_API_KEY" not in simulated and simulated["PATH"] == "/bin"
    remote = child_environment(parse("--host", "http://127.0.0.1:9", environ=environ), environ)
    assert remote["ANCHOR_API_KEY"] == KEY


def test_bench_run_offers_every_plugin_option_but_the_ones_it_sets():
    # In a child: importing the plugin imports Locust, which monkey-patches the process.
    # What Locust really registers (through the plugin's listener) is compared with
    # what `bench run` offers, so an option added to the table reaches both.
    code = (
        "import json\n"
        "from locust.argument_parser import get_parser\n"
        "import bench.measure.plugin\n"
        "print(json.dumps(sorted(get_parser()._option_string_actions)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    locust_flags = set(json.loads(out.stdout))
    offered = {flag for flag, _, _ in HARNESS_OPTIONS}
    assert offered and offered | FIXED_OPTIONS <= locust_flags
    assert {"--client-timeout", "--journey-log", "--ladder", "--poll-interval"} <= offered
    assert not offered & FIXED_OPTIONS
    assert all(flag in run_help() for flag in offered)


def test_given_harness_options_are_checked_by_the_plugins_converters():
    with pytest.raises(UsageError, match="client-timeout"):
        parse("--client-timeout", "-1")
    argv = locust_command(parse("--client-timeout", "5", "--journey-log"), Path("r"), "py")
    assert argv[argv.index("--no-report") + 1 :] == [
        "--journey-log", "--client-timeout=5", "--release=unlabelled",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--ladder", "1,x"], {}, "'x' is not an integer"),
        (["--step-time", "2"], {}, "--settle"),
        (["--host", "https://api.example.invalid"], {"ANCHOR_API_KEY": KEY}, "--max-sessions"),
        (["--host", "http://127.0.0.1:9"], {}, "ANCHOR_API_KEY is not set"),
        (["--release", "a/b"], {}, "--release"),
        (["--sim-profile", "no-such-profile"], {}, "--sim-profile"),
        (["--processes", "0"], {}, "--processes must be at least 1"),
        (["--processes", "2", "--expect-workers", "2"], {}, "exclude each other"),
        (["--baseline", "/nonexistent/base"], {}, "--baseline: /nonexistent/base does not exist"),
        (["--thresholds", str(FIXTURES / "missing.toml")], {}, "--thresholds:"),
        (["--thresholds", str(ROOT / "pyproject.toml")], {}, "unknown key 'build-system'"),
        (["--frobnicate"], {}, "unrecognized arguments"),
        # Not comparable, found before the run: the fixture's create body is not ours.
        (["--baseline", str(SMALL)], {}, "--baseline: not comparable: session config differs"),
        (["--baseline", str(SMALL), "--poll-interval", "0.5"], {},
         "--baseline: not comparable: poll interval differs (baseline 0.25, this run 0.5)"),
        (["--baseline", str(ROOT / "pyproject.toml")], {}, "--baseline: baseline: results file"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2_before_anything_runs(
    argv, environ, message, capsys, tmp_path
):
    code = main(["run", "--reports-dir", str(tmp_path / "reports"), *argv], environ)
    err = capsys.readouterr().err
    assert code == exitcodes.USAGE
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert message in err
    assert KEY not in err
    assert not (tmp_path / "reports").exists()  # refused before a run folder was made


def test_force_accepts_a_baseline_that_is_not_comparable():
    assert parse("--baseline", str(SMALL), "--force").baseline == SMALL


# --- exit codes -----------------------------------------------------------------------


def execution(code: int, *, timed_out: bool = False, interrupted: int | None = None) -> Execution:
    return Execution(code, timed_out, Path("locust.log"), interrupted)


@pytest.mark.parametrize(
    ("code", "timed_out", "results_error", "expected"),
    [
        (0, False, None, exitcodes.OK),
        (exitcodes.LEAKED_SESSIONS, False, None, exitcodes.LEAKED_SESSIONS),
        (exitcodes.TARGET_UNREACHABLE, False, None, exitcodes.TARGET_UNREACHABLE),
        (exitcodes.USAGE, False, "no file", exitcodes.USAGE),
        (1, False, None, LOCUST_FAILED),  # Locust's own error is not a regression
        (3, False, None, LOCUST_FAILED),  # nor a threshold failure
        (-9, False, "no file", LOCUST_FAILED),
        (0, True, None, LOCUST_FAILED),
        (0, False, "results file x is truncated", LOCUST_FAILED),
    ],
)
def test_run_exit_code(code, timed_out, results_error, expected):
    assert run_exit_code(execution(code, timed_out=timed_out), results_error)[0] == expected


def test_an_interrupted_run_never_passes():
    assert run_exit_code(execution(0, interrupted=15), None)[0] == 143
    assert run_exit_code(execution(0, interrupted=2), None)[0] == 130
    # What the harness found wrong with the run comes first.
    assert run_exit_code(execution(12, interrupted=15), None)[0] == 12
    assert final_exit_code(143, thresholds_passed=True, verdict_error=False, compare_code=0) == 143


@pytest.mark.parametrize(
    ("run", "thresholds", "error", "compare", "expected"),
    [
        (0, None, False, None, 0),
        (0, True, False, 0, 0),
        (0, None, False, 1, 1),
        (0, False, False, None, 3),
        (0, False, False, 1, 3),  # thresholds before regression
        (0, False, True, 1, 2),  # a verdict that could not be reached before both
        (0, True, False, 2, 2),
        (12, False, True, 1, 12),  # a broken run before everything
        (2, None, False, None, 2),
        (LOCUST_FAILED, True, False, 0, LOCUST_FAILED),
    ],
)
def test_exit_code_precedence(run, thresholds, error, compare, expected):
    got = final_exit_code(run, thresholds_passed=thresholds, verdict_error=error,
                          compare_code=compare)  # fmt: skip
    assert got == expected


# --- the child process ----------------------------------------------------------------


def test_output_is_streamed_through_and_logged(tmp_path):
    child = (
        "import sys\n"
        "print('progress: step 1/2', flush=True)\n"
        f"print('oops {KEY}', file=sys.stderr, flush=True)\n"
        "sys.exit(12)\n"
    )
    out = io.StringIO()
    result = execute([sys.executable, "-c", child], {}, tmp_path / "child.log", budget_s=60,
                     secrets=[KEY], out=out)  # fmt: skip
    assert result.returncode == 12 and not result.timed_out
    assert out.getvalue() == "progress: step 1/2\noops ***\n"
    assert (tmp_path / "child.log").read_text() == out.getvalue()


def test_the_watchdog_stops_a_hung_child(tmp_path):
    # The child never ends on its own (bounded only by the watchdog under test).
    child = "import time\nprint('started', flush=True)\nwhile True: time.sleep(1)\n"
    out = io.StringIO()
    result = execute([sys.executable, "-c", child], {}, tmp_path / "c.log", budget_s=0.5, out=out)
    assert result.timed_out and result.returncode < 0
    assert run_exit_code(result, None)[0] == LOCUST_FAILED
    assert out.getvalue() == "started\n"


def test_scrub_leaves_short_strings_alone():
    assert scrub(f"a {KEY} b {KEY}", [KEY]) == "a *** b ***"
    assert scrub("key", [""]) == "key"


# --- summary --------------------------------------------------------------------------


def test_demote_headings_skips_code_blocks():
    text = "# A\n## B\n```\n# not a heading\n```\ntext"
    assert demote_headings(text) == "## A\n### B\n```\n# not a heading\n```\ntext"


def test_summary_of_a_broken_run_without_results(tmp_path):
    opts = parse("--release", "r9")
    outcome = Outcome(tmp_path / "r9" / "RUN", exitcodes.TARGET_UNREACHABLE, "target unreachable")
    outcome.problems.append("comparison failed: nope")
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    path = write_summary(outcome, opts, {"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert path == tmp_path / "r9" / "RUN" / "summary.md"
    text = path.read_text()
    assert text == summary_markdown(outcome, opts)
    head = "# Benchmark `RUN` - release `r9`\n\n**Verdict: exit code 10 - broken run: "
    assert text.startswith(head + "target unreachable**")
    assert "- problem: comparison failed: nope" in text
    assert step_summary.read_text() == "earlier step\n" + text + "\n"


def test_a_closed_console_does_not_stop_the_child_or_its_log(tmp_path):
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    child = "for i in range(3): print('line', i, flush=True)\n"
    result = execute([sys.executable, "-c", child], {}, tmp_path / "c.log", budget_s=60,
                     out=Closed())  # fmt: skip
    assert result.returncode == 0
    assert (tmp_path / "c.log").read_text() == "line 0\nline 1\nline 2\n"


def test_bench_run_picks_the_processes_port_unless_the_user_did():
    assert chooses_master_port(parse("--processes", "2"))
    assert not chooses_master_port(parse())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        with pytest.raises(UsageError, match=f"--master-bind-port {port}: not free"):
            parse("--processes", "2", "--master-bind-port", port)
    given = parse("--processes", "2", "--master-bind-port", port)  # free again
    assert not chooses_master_port(given)
    argv = locust_command(given, Path("r"), "py", master_port=None)
    assert argv[argv.index("--master-bind-port") + 1] == argv[argv.index("--master-port") + 1]
    assert argv[argv.index("--master-port") + 1] == port
    own_port = parse("--processes", "2", "--locust-arg=--master-bind-port=6000")
    assert not chooses_master_port(own_port)


def test_a_value_that_looks_like_a_flag_stays_a_value(tmp_path, monkeypatch):
    # Checked as the value it is, not refused as "expected one argument".
    with pytest.raises(UsageError, match="finite"):
        parse("--hold=-inf")
    monkeypatch.chdir(tmp_path)
    Path("-body.json").write_text('{"session": {}}')
    argv = locust_command(parse("--session-config=-body.json"), Path("r"), "py")
    assert argv.count("--session-config=-body.json") == 1
    argv = locust_command(parse("--release=rc-1"), Path("r"), "py")
    assert [arg for arg in argv if arg.startswith("--release")] == ["--release=rc-1"]
