"""After the Locust run: results, report, SLO thresholds, comparison, summary and exit code.

Exit code of `bench run` (first match wins):

1. a broken run: the harness's own code (10-15, bench/core/exitcodes.py), 2 for a usage
   error Locust reported, or LOCUST_FAILED (16) when Locust ended without a harness
   verdict (crashed, killed, stopped by the watchdog, or no readable results file);
   128 + N when `bench run` itself got signal N (130 SIGINT, 143 SIGTERM, the shell
   convention): the results of the partial ladder are kept and post-processed, but
   an interrupted run never reads as a pass;
2. 2 when a requested verdict could not be reached: the comparison failed (e.g. the
   baseline is not comparable; `--force` overrides) or the thresholds could not be
   evaluated;
3. THRESHOLDS_FAILED (3): a threshold from `--thresholds` was missed;
4. REGRESSION (1): the comparison with `--baseline` found the candidate worse;
5. 0.

A failed report is announced in one line and in summary.md but changes no exit
code: the verdicts do not depend on it.  Nothing here ever deletes or rewrites the
results file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.analyse.slo_gates import Evaluation, evaluate, format_lines, format_markdown
from bench.core import exitcodes
from bench.record.results import Results, ResultsError, load_results
from bench.run.arguments import RunOptions
from bench.run.execute import Execution

LOCUST_FAILED = exitcodes.LOCUST_FAILED

BROKEN = frozenset(
    {
        exitcodes.USAGE,
        exitcodes.TARGET_UNREACHABLE,
        exitcodes.PROTOCOL_ERRORS,
        exitcodes.LEAKED_SESSIONS,
        exitcodes.INVARIANT_BROKEN,
        exitcodes.NO_JOURNEYS,
        exitcodes.WORKER_LOST,
        exitcodes.NO_READY,
        exitcodes.REFUSED,
        LOCUST_FAILED,
    }
)

MEANINGS: dict[int, str] = {
    exitcodes.OK: "all clear",
    exitcodes.REGRESSION: "regression against the baseline",
    exitcodes.USAGE: "usage error or a verdict that could not be reached",
    exitcodes.THRESHOLDS_FAILED: "SLO thresholds failed",
    exitcodes.TARGET_UNREACHABLE: "broken run: target unreachable",
    exitcodes.PROTOCOL_ERRORS: "broken run: too many protocol errors",
    exitcodes.LEAKED_SESSIONS: "broken run: sessions left alive",
    exitcodes.INVARIANT_BROKEN: "broken run: outcomes do not add up",
    exitcodes.NO_JOURNEYS: "broken run: no journey ran",
    exitcodes.WORKER_LOST: "broken run: a worker was lost",
    exitcodes.NO_READY: "broken run: no journey reached ready",
    exitcodes.REFUSED: "broken run: the provider refused the key or to create sessions",
    LOCUST_FAILED: "broken run: Locust ended without a harness verdict",
}


def run_exit_code(execution: Execution, results_error: str | None) -> tuple[int, str]:
    """The run's own verdict from Locust's exit code (pure)."""
    code = execution.returncode
    if code in BROKEN - {exitcodes.USAGE, LOCUST_FAILED}:
        return code, MEANINGS[code]  # the harness's verdict on what it measured comes first
    if execution.interrupted is not None:
        signum = execution.interrupted
        return 128 + signum, "the partial run's results are kept"
    if execution.timed_out:
        return LOCUST_FAILED, f"stopped by the watchdog (Locust exit code {code})"
    if code < 0:
        return LOCUST_FAILED, f"Locust was killed by signal {-code}"
    if code in BROKEN:
        return code, MEANINGS[code]
    if code != exitcodes.OK:
        # Locust's own non-zero codes (1: an error in Locust itself) are no regression.
        return LOCUST_FAILED, f"Locust exited with code {code}"
    if results_error is not None:
        return LOCUST_FAILED, results_error
    return exitcodes.OK, "clean run"


def meaning(code: int) -> str:
    if code > 128:
        return f"interrupted by signal {code - 128}"
    return MEANINGS.get(code, "unknown")


def final_exit_code(
    run_code: int, *, thresholds_passed: bool | None, verdict_error: bool, compare_code: int | None
) -> int:
    """Precedence (pure): broken run > unreachable verdict > thresholds > regression > 0."""
    if run_code != exitcodes.OK:
        return run_code
    if verdict_error:
        return exitcodes.USAGE
    if thresholds_passed is False:
        return exitcodes.THRESHOLDS_FAILED
    if compare_code == exitcodes.REGRESSION:
        return exitcodes.REGRESSION
    if compare_code not in (None, exitcodes.OK):
        return exitcodes.USAGE  # any other comparison code means it could not conclude
    return exitcodes.OK


@dataclass
class Outcome:
    """What post-processing found; `summary_markdown` renders it."""

    run_dir: Path
    run_code: int
    run_reason: str
    results: Results | None = None
    report_path: Path | None = None
    report_markdown: str | None = None
    evaluation: Evaluation | None = None
    comparison_markdown: str | None = None
    compare_code: int | None = None
    problems: list[str] = field(default_factory=list)
    verdict_error: bool = False
    # With --repeat: each run's own outcome (results, thresholds), in order; this
    # outcome is then the set's (its folder, report and comparison).
    repeats: list[Outcome] = field(default_factory=list)
    result_set: Path | None = None

    @property
    def thresholds_passed(self) -> bool | None:
        """The thresholds' verdict: this run's, or every repeat's (each must pass)."""
        evaluations = [o.evaluation for o in self.repeats] if self.repeats else [self.evaluation]
        found = [e for e in evaluations if e is not None]
        return all(e.passed for e in found) if found else None

    @property
    def exit_code(self) -> int:
        return final_exit_code(
            self.run_code,
            thresholds_passed=self.thresholds_passed,
            verdict_error=self.verdict_error or any(o.verdict_error for o in self.repeats),
            compare_code=self.compare_code,
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _adopt_run_id(run_dir: Path, results: Results) -> Path:
    """Name the folder after the results' own run id when it is free (ids then match)."""
    run_id = str(results.run.get("id", ""))
    target = run_dir.with_name(run_id)
    if not run_id or target == run_dir or target.exists() or "/" in run_id:
        return run_dir
    try:
        run_dir.rename(target)
    except OSError:
        return run_dir
    return target


def _report_markdown(path: Path) -> str | None:
    """The Markdown summary that came with a report (its path, or next to it)."""
    candidates = [path] if path.suffix == ".md" else []
    folder = path if path.is_dir() else path.parent
    candidates += [folder / "summary.md", *sorted(folder.glob("*.md"))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def demote_headings(markdown: str) -> str:
    """Every Markdown heading one level down, so an embedded document nests under ours."""
    lines = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if not fenced and line.startswith("#") else line)
    return "\n".join(lines)


def make_report(
    outcome: Outcome, options: RunOptions, results_path: Path | list[Path]
) -> None:
    paths = results_path if isinstance(results_path, list) else [results_path]
    try:
        from bench.present.report import build_report

        slo = options.thresholds.slo if options.thresholds else None
        path = build_report(paths, outcome.run_dir / "report", slo=slo)
        outcome.report_path = Path(path)
        outcome.report_markdown = _report_markdown(outcome.report_path)
    except Exception as exc:  # a report bug must not cost the measurements or the verdicts
        outcome.problems.append(f"report failed: {_one_line(exc)}")


def check_thresholds(outcome: Outcome, options: RunOptions) -> None:
    assert options.thresholds is not None and outcome.results is not None
    try:
        outcome.evaluation = evaluate(options.thresholds, outcome.results)
    except Exception as exc:  # pragma: no cover - evaluate is pure and tested
        outcome.problems.append(f"thresholds could not be evaluated: {_one_line(exc)}")
        outcome.verdict_error = True


def compare_with_baseline(outcome: Outcome, options: RunOptions, results_path: Path) -> None:
    assert options.baseline is not None
    try:
        from bench.present.compare import compare_paths, render_markdown

        comparison = compare_paths(
            options.baseline,
            results_path,
            outcome.run_dir / "compare",
            thresholds=options.compare_thresholds,
            force=options.force,
        )
        outcome.compare_code = int(comparison.exit_code)
        outcome.comparison_markdown = render_markdown(comparison)
    except Exception as exc:  # e.g. not comparable, unreadable baseline, not installed
        outcome.problems.append(f"comparison failed: {_one_line(exc)}")
        outcome.verdict_error = True


def post_process(options: RunOptions, run_dir: Path, execution: Execution) -> Outcome:
    """Everything after Locust: each stage guarded, so one failure never hides the rest."""
    results_path = run_dir / "results.json"
    results: Results | None = None
    results_error: str | None = None
    try:
        results = load_results(results_path)
    except ResultsError as exc:
        results_error = _one_line(exc)
    code, reason = run_exit_code(execution, results_error)
    if results is not None:
        run_dir = _adopt_run_id(run_dir, results)
        results_path = run_dir / "results.json"
    outcome = Outcome(run_dir, code, reason, results)
    if results is None:
        if results_error and execution.returncode == exitcodes.OK:
            outcome.problems.append(results_error)
        return outcome
    if options.report:
        make_report(outcome, options, results_path)
    if options.thresholds is not None:
        check_thresholds(outcome, options)
    if options.baseline is not None:
        compare_with_baseline(outcome, options, results_path)
    return outcome


def summary_markdown(outcome: Outcome, options: RunOptions) -> str:
    """summary.md: the verdict first, then the report's summary, thresholds, comparison."""
    code = outcome.exit_code
    run = outcome.results.run if outcome.results is not None else {}
    title = f"# Benchmark `{run.get('id', outcome.run_dir.name)}` - release `{options.release}`"
    target = options.host or f"embedded simulator ({options.config.simulator_profile})"
    lines = [
        title,
        "",
        f"**Verdict: exit code {code} - {meaning(code)}**",
        "",
        f"- target: {target}",
        f"- run: {outcome.run_reason}",
        f"- folder: `{outcome.run_dir}`",
    ]
    if outcome.repeats:
        lines[0] = (f"# Benchmark set `{outcome.run_dir.name}` - release `{options.release}`, "
                    f"{len(outcome.repeats)} of {options.repeat} repeats")
        lines.append(f"- result set: `{outcome.result_set}`" if outcome.result_set else
                     "- result set: none (no repeat ended cleanly)")
        for number, rep in enumerate(outcome.repeats, start=1):
            gates = ("" if rep.evaluation is None else
                     ", thresholds " + ("passed" if rep.evaluation.passed else "FAILED"))
            lines.append(f"- repeat {number}: `{rep.run_dir.name}`, exit code {rep.run_code} "
                         f"({rep.run_reason}){gates}")
    lines += [f"- problem: {p}" for p in outcome.problems]
    lines.append("")
    if outcome.report_markdown:
        lines += [demote_headings(outcome.report_markdown).rstrip(), ""]
    elif outcome.results is not None and options.report:
        lines += ["_No report summary (see the problems above)._", ""]
    if outcome.evaluation is not None:
        lines += [format_markdown(outcome.evaluation).rstrip(), ""]
    for number, rep in enumerate(outcome.repeats, start=1):
        if rep.evaluation is not None:
            lines += [f"### Repeat {number}", "",
                      demote_headings(format_markdown(rep.evaluation)).rstrip(), ""]
    if outcome.comparison_markdown:
        lines += ["## Comparison with the baseline", "", f"Baseline: `{options.baseline}`.", ""]
        lines += [demote_headings(outcome.comparison_markdown).rstrip(), ""]
    return "\n".join(lines)


def write_summary(
    outcome: Outcome, options: RunOptions, environ: Mapping[str, str]
) -> Path | None:
    """Write summary.md in the run folder and append it to the GitHub job summary if set."""
    text = summary_markdown(outcome, options)
    path: Path | None = outcome.run_dir / "summary.md"
    try:
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        outcome.problems.append(f"summary.md not written: {_one_line(exc)}")
        path = None
    step_summary = environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with contextlib.suppress(OSError), open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return path


def console_lines(outcome: Outcome, summary: Path | None) -> list[str]:
    """What `bench run` prints at the end (one line each)."""
    lines = [f"bench run: problem: {p}" for p in outcome.problems]
    if outcome.results is not None:
        lines.append(f"bench run: results {outcome.run_dir / 'results.json'}")
    if outcome.report_path is not None:
        lines.append(f"bench run: report {outcome.report_path}")
    if outcome.evaluation is not None:
        lines += [f"bench run: {line}" for line in format_lines(outcome.evaluation)]
    if outcome.compare_code is not None:
        verdict = "regression" if outcome.compare_code == exitcodes.REGRESSION else "no regression"
        lines.append(f"bench run: comparison: {verdict} (exit code {outcome.compare_code})")
    if summary is not None:
        lines.append(f"bench run: summary {summary}")
    code = outcome.exit_code
    if code != exitcodes.OK and code == outcome.run_code:
        # The run decided: its meaning, and the reason when that adds something.
        reason = outcome.run_reason
        detail = meaning(code) if reason == meaning(code) else f"{meaning(code)}: {reason}"
    else:
        detail = f"{meaning(code)}; run: {outcome.run_reason}"
    lines.append(f"bench run: exit code {code} ({detail})")
    return lines


def finish_repeat(
    options: RunOptions, run_dir: Path, execution: Execution, number: int,
    printer: Callable[[str], Any] = print,
) -> Outcome:
    """One repeat of a set: its results and thresholds (the report and the comparison are
    the set's); summary.md in its own folder, and its closing lines on the console."""
    alone = dataclasses.replace(options, report=False, baseline=None)
    outcome = post_process(alone, run_dir, execution)
    summary = write_summary(outcome, alone, {})
    for line in console_lines(outcome, summary):
        printer(line.replace("bench run: ", f"bench run: repeat {number}: ", 1))
    return outcome


def finish_set(
    options: RunOptions,
    set_dir: Path,
    repeats: list[Outcome],
    environ: Mapping[str, str] = os.environ,
    printer: Callable[[str], Any] = print,
) -> int:
    """After every repeat: the result set, one report, the comparison, summary.md, exit code."""
    from bench.record.result_set import write_result_set

    broken = next((o for o in repeats if o.run_code != exitcodes.OK), None)
    run_code, reason = (
        (broken.run_code, f"repeat {repeats.index(broken) + 1}: {broken.run_reason}")
        if broken is not None else (exitcodes.OK, f"{len(repeats)} clean runs")
    )
    outcome = Outcome(set_dir, run_code, reason, repeats=repeats)
    clean = [o.run_dir / "results.json" for o in repeats
             if o.results is not None and o.run_code == exitcodes.OK]
    if clean:
        try:
            outcome.result_set = write_result_set(set_dir, options.release, clean)
        except (OSError, ValueError) as exc:
            outcome.problems.append(f"result set not written: {_one_line(exc)}")
    if outcome.result_set is not None:
        if options.report:
            make_report(outcome, options, clean)
        if options.baseline is not None:
            compare_with_baseline(outcome, options, outcome.result_set)
    elif options.baseline is not None:
        outcome.problems.append("comparison skipped: no repeat ended cleanly")
    summary = write_summary(outcome, options, environ)
    lines = console_lines(outcome, summary)
    if outcome.result_set is not None:
        lines.insert(-1, f"bench run: result set {outcome.result_set}")
    for line in lines:
        printer(line)
    return outcome.exit_code


def finish(
    options: RunOptions,
    run_dir: Path,
    execution: Execution,
    environ: Mapping[str, str] = os.environ,
    printer: Callable[[str], Any] = print,
) -> int:
    """Post-process, write the summary, print the closing lines; the exit code."""
    outcome = post_process(options, run_dir, execution)
    summary = write_summary(outcome, options, environ)
    for line in console_lines(outcome, summary):
        printer(line)
    return outcome.exit_code


__all__ = [
    "LOCUST_FAILED",
    "MEANINGS",
    "Outcome",
    "final_exit_code",
    "finish",
    "finish_repeat",
    "finish_set",
    "post_process",
    "run_exit_code",
    "summary_markdown",
]
