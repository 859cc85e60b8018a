"""Fuzzing user input: results files, `bench simulate`, `bench report`, `bench compare`.

Whatever the bytes, the only failure allowed is the clear one: ResultsError from the
loader, exit code 2 with a one-line `Error:` (or argparse usage) on stderr from the CLI.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.core import exitcodes
from bench.record.results import ResultsError, parse_results

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
VALID = (FIXTURES / "v2-small.json").read_bytes()
VALID_DOC = orjson.loads(VALID)
# Cutting only trailing whitespace leaves a complete file: truncations stop before it.
CUT_LIMIT = len(VALID.rstrip()) - 1
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what JSON (orjson) can carry
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (dict keys and list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


PATHS = paths(VALID_DOC)[1:]


def mutate(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    doc = orjson.loads(orjson.dumps(doc))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def parses_or_refuses(data: bytes) -> None:
    with contextlib.suppress(ResultsError):
        parse_results(data, "fuzz.json")


@SETTINGS
@given(st.binary(max_size=300))
def test_loader_on_random_bytes(data):
    parses_or_refuses(data)


@SETTINGS
@given(st.integers(min_value=0, max_value=CUT_LIMIT))
def test_loader_on_truncated_valid_file(cut):
    with pytest.raises(ResultsError):
        parse_results(VALID[:cut], "truncated.json")


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(0, 255))
def test_loader_on_flipped_byte(position, byte):
    parses_or_refuses(VALID[:position] + bytes([byte]) + VALID[position + 1 :])


@SETTINGS
@given(st.sampled_from(PATHS), JSON, st.booleans())
def test_loader_on_mutated_valid_document(path, value, delete):
    parses_or_refuses(orjson.dumps(mutate(VALID_DOC, path, value, delete)))


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def assert_user_error(code: int, stderr: str) -> None:
    assert code == exitcodes.USAGE, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    # One line of ours, or argparse's usage + one error line.
    assert len(lines) == 1 or lines[-1].startswith("bench"), stderr
    assert lines and lines[-1].strip(), stderr


SIM_OPTIONS = st.sampled_from(
    ["--port", "--profile", "--time-scale", "--seed", "--host", "--api-key-env", "--truth", "-x"]
)
SIM_VALUES = st.one_of(
    st.sampled_from(["-1", "0", "nan", "inf", "1e309", "", "fast", "x.toml", "::1", "99999"]),
    # Characters str.splitlines breaks on besides "\n" (a CI run once drew "\x85").
    st.sampled_from(["a\nb", "\r", "\x85", "\u2028", "\x1e", "\x0b"]),
    st.text(max_size=6),
)


@SETTINGS
@given(st.lists(st.tuples(SIM_OPTIONS, SIM_VALUES), min_size=1, max_size=3))
@example([("--truth", "\x85"), ("--truth", "-1")])
def test_simulate_arguments(pairs):
    # A valid set of options would start a server: force one bad value in every example.
    argv = ["simulate", *[part for pair in pairs for part in pair], "--port", "-5"]
    code, stderr = run_cli(argv)
    assert_user_error(code, stderr)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# Random bytes or a truncated valid file: never a usable results file.
BAD_FILES = st.one_of(
    st.binary(max_size=200), st.integers(0, CUT_LIMIT).map(lambda n: VALID[:n])
)
CLI_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@CLI_SETTINGS
@given(data=BAD_FILES)
def test_report_on_fuzzed_file(fuzz_dir, data):
    path = fuzz_dir / "bad-report.json"
    path.write_bytes(data)
    code, stderr = run_cli(["report", str(path), "-o", str(fuzz_dir / "out")])
    assert_user_error(code, stderr)


@CLI_SETTINGS
@given(data=BAD_FILES, baseline_bad=st.booleans())
def test_compare_on_fuzzed_file(fuzz_dir, data, baseline_bad):
    bad = fuzz_dir / "bad-compare.json"
    bad.write_bytes(data)
    good = str(FIXTURES / "v2-small.json")
    pair = [str(bad), good] if baseline_bad else [good, str(bad)]
    code, stderr = run_cli(["compare", *pair, "-o", str(fuzz_dir / "cmp")])
    assert_user_error(code, stderr)


def test_a_newline_in_an_argument_still_gives_one_error_line():
    code, stderr = run_cli(["simulate", "--bogus\nflag"])
    assert code == exitcodes.USAGE
    assert stderr.count("\n") == 1 and "--bogus\\nflag" in stderr
