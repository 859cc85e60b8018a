"""The one list of every way the simulator knowingly differs from the provider's OpenAPI spec."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deviation:
    """One documented difference between the simulator's answers and the spec.

    `path` is a dotted JSON path into a response body (``""`` when the deviation
    is about headers or status codes); `values` lists the out-of-spec values that
    the simulator may put there, so conformance tests can tolerate exactly those
    and nothing else.
    """

    key: str
    endpoint: str
    path: str
    values: tuple[str, ...]
    what: str
    why: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        key="session-status-running",
        endpoint="GET /v1/sessions/async/{request_id}/status",
        path="data.session.status",
        values=("running", "ended"),
        what=(
            "The embedded session's status is `running` while the browser is up "
            "and `ended` once it is over, values BatchSessionItemSchema's enum lacks."
        ),
        why=(
            "The provider's own documentation shows `session.status: \"running\"` on a ready "
            "request, so the real API answers outside its enum; clients must tolerate it."
        ),
    ),
    Deviation(
        key="retry-after-decimal",
        endpoint="any 429",
        path="",
        values=(),
        what=(
            "With a time scale other than 1, `Retry-After` carries decimal seconds "
            "(e.g. `0.05`) instead of an integer."
        ),
        why=(
            "RFC 9110 only allows integer delay-seconds, but a scaled run compresses time; "
            "rounding up to 1 s would stretch every back-off far beyond the simulated one. "
            "At time scale 1 the header is an integer, as the real API sends."
        ),
    ),
    Deviation(
        key="ratelimit-headers-shape",
        endpoint="any 429",
        path="",
        values=(),
        what=(
            "`RateLimit: limit=N, remaining=R, reset=S` and `RateLimit-Policy: N;w=W` "
            "follow draft-ietf-httpapi-ratelimit-headers-07: N, R, W from the create token "
            "bucket when the profile has one, else N is the browser limit and R is 0."
        ),
        why="The spec names these headers but not their syntax; the draft's form is common.",
    ),
    Deviation(
        key="list-filters-ignored",
        endpoint="GET /v1/sessions/all/status",
        path="",
        values=(),
        what=(
            "`tags`, `created_from`, `created_to` and `playground` filter; `domains`, "
            "`batch_id`, `task_initiated`, `proxy`, `extra_stealth` and `profile_name` are "
            "type-checked (400 when malformed) but do not narrow the list."
        ),
        why="Simulated sessions visit no domains, belong to no batch and carry no profile.",
    ),
    Deviation(
        key="get-session-tags",
        endpoint="GET /v1/sessions/{session_id}",
        path="data.tags",
        values=(),
        what=(
            "`tags` is left out; the session's tags appear under "
            "`configuration.session.tags` as a list."
        ),
        why=(
            "The spec types this `tags` as an object while every other endpoint uses a list "
            "of strings; leaving the optional field out keeps the body valid either way."
        ),
    ),
    Deviation(
        key="payload-too-large",
        endpoint="POST /v1/sessions/async",
        path="",
        values=(),
        what="Bodies over 1 MiB get 413 with an ErrorResponse body.",
        why="The spec lists no size limit; every real gateway has one, and 413 is its status.",
    ),
    Deviation(
        key="unknown-route-bodies",
        endpoint="any",
        path="",
        values=(),
        what=(
            "Unknown routes answer 404, wrong methods 405, both with an ErrorResponse body; "
            "malformed request ids (not a UUID) answer 404 like unknown ones. Bytes that are "
            "not HTTP at all get the HTTP parser's plain-text 400."
        ),
        why=(
            "The spec says nothing about them; an ErrorResponse body keeps clients on one "
            "path. A request that never parsed has no route to shape its answer."
        ),
    ),
)


def tolerated_values(path: str) -> frozenset[str]:
    """Out-of-spec values the simulator may put at the dotted JSON `path`."""
    return frozenset(v for d in DEVIATIONS if d.path == path for v in d.values)
