"""The one list of every way the simulator knowingly differs from the provider's OpenAPI spec.

DEVIATIONS are the default profile's; deviations_for(profile) adds those that the
profile's [dialect] serves on purpose, so conformance tests tolerate exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.simulator.profile import DialectParams

# Pseudo path of a deviation about the HTTP status code (its values are codes as text).
STATUS_CODE = "@status"
# BatchSessionItemSchema.status: the spec's words for the embedded session.
SPEC_SESSION_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
# The endpoints as deviations name them, with the codes the spec lists for each.
CREATE = "POST /v1/sessions/async"
STATUS = "GET /v1/sessions/async/{request_id}/status"
DELETE = "DELETE /v1/sessions/{session_id}"
LIST = "GET /v1/sessions/all/status"


@dataclass(frozen=True)
class Deviation:
    """One documented difference between the simulator's answers and the spec.

    `path` is a dotted JSON path into a response body, STATUS_CODE when the
    deviation is about the HTTP status code, ``""`` when it is about headers or
    behaviour; `values` lists the out-of-spec values (codes, for STATUS_CODE) that
    the simulator may put there, so conformance tests can tolerate exactly those
    and nothing else.  `absent` says a field the spec requires may be missing.
    A conformance test puts `stand_in` (an in-spec value) in place of a tolerated
    value or absent field that the spec requires; None means the field is optional
    and the test may drop it.
    """

    key: str
    endpoint: str
    path: str
    values: tuple[str, ...]
    what: str
    why: str
    absent: bool = False
    stand_in: Any = None


_ALWAYS: tuple[Deviation, ...] = (
    Deviation(
        key="retry-after-decimal",
        endpoint="any 429",
        path="",
        values=(),
        what=(
            "With a time scale other than 1, `Retry-After` carries decimal seconds "
            "(e.g. `0.05`) instead of an integer; so does every Retry-After with the "
            "dialect's retry_after_format = \"decimal\"."
        ),
        why=(
            "RFC 9110 only allows integer delay-seconds, but a scaled run compresses time; "
            "rounding up to 1 s would stretch every back-off far beyond the simulated one. "
            "At time scale 1 the header is an integer, as the real API sends. The decimal "
            "dialect imitates providers that send fractions anyway."
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




def _session_words(d: DialectParams) -> tuple[Deviation, ...]:
    words = tuple(
        w for w in (d.live_session_status, d.ended_session_status)
        if w not in SPEC_SESSION_STATUSES
    )
    if not words:
        return ()
    return (
        Deviation(
            key="session-status-words",
            endpoint=STATUS,
            path="data.session.status",
            values=words,
            what=(
                f"The embedded session's status is `{d.live_session_status}` while the "
                f"browser is up and `{d.ended_session_status}` once it is over; "
                f"{', '.join(f'`{w}`' for w in words)} BatchSessionItemSchema's enum lacks."
            ),
            why=(
                "The provider's own documentation shows `session.status: \"running\"` on a "
                "ready request, so the real API answers outside its enum; clients must "
                "tolerate any word (the dialect chooses which)."
            ),
        ),
    )


def _codes(codes: set[int], spec: set[int]) -> tuple[str, ...]:
    """The codes outside the spec's, as text."""
    return tuple(str(c) for c in sorted(codes - spec))


def _dialect_deviations(d: DialectParams) -> tuple[Deviation, ...]:
    """What a [dialect] serves outside the spec's letter, knob by knob."""
    out: list[Deviation] = list(_session_words(d))
    if d.no_progress_rate > 0:
        out.append(Deviation(
            key="status-without-progress",
            endpoint=STATUS,
            path="data.progress",
            values=(),
            absent=True,
            stand_in={"current_phase": "queued"},
            what=f"{d.no_progress_rate:.0%} of status answers leave out `progress`.",
            why=(
                "The spec requires `progress` but the doc calls the phase finer-grained "
                "detail; a provider that drops it must not break a client, which has "
                "the status to decide by."
            ),
        ))
    if d.unknown_phase_rate > 0:
        out.append(Deviation(
            key="unknown-phase-words",
            endpoint=STATUS,
            path="data.progress.current_phase",
            values=d.unknown_phases,
            stand_in="queued",
            what=(
                f"{d.unknown_phase_rate:.0%} of status answers carry a phase outside the "
                f"spec's enum ({', '.join(d.unknown_phases)})."
            ),
            why="Providers add phases before they add them to the spec; the phase is detail.",
        ))
    if d.create_status != 200:
        out.append(Deviation(
            key="create-status-code",
            endpoint=CREATE,
            path=STATUS_CODE,
            values=(str(d.create_status),),
            what=f"Create answers {d.create_status} (the spec says 200), with the same body.",
            why="201 Created and 202 Accepted are common readings of an asynchronous create.",
        ))
    delete_codes = _codes(
        {d.delete_status, d.delete_ended_status, d.delete_unknown_status}, {200, 401, 500}
    )
    if delete_codes:
        out.append(Deviation(
            key="delete-status-codes",
            endpoint=DELETE,
            path=STATUS_CODE,
            values=delete_codes,
            what=(
                f"DELETE answers {', '.join(delete_codes)} (the spec lists 200, 401 and "
                "500): 204 with no body, 404 / 410 for a session that is gone."
            ),
            why="The usual REST answers for an idempotent DELETE and for a missing resource.",
        ))
    if d.redirect_rate > 0:
        out.append(Deviation(
            key="redirects",
            endpoint="any",
            path=STATUS_CODE,
            values=tuple(str(c) for c in sorted(d.redirect_codes)),
            what=(
                f"{d.redirect_rate:.0%} of requests to {', '.join(d.redirect_endpoints)} are "
                f"redirected ({', '.join(map(str, d.redirect_codes))}) to "
                f"{' or '.join(d.redirect_targets)}."
            ),
            why=(
                "Gateways and moved hosts redirect; the spec lists no 3xx, and a client "
                "must never carry the API key to another origin."
            ),
        ))
    if d.list_paging != "none":
        out.append(Deviation(
            key="list-paged",
            endpoint=LIST,
            path="",
            values=(),
            what=(
                f"The list answers at most {d.list_page_size} sessions per call "
                f"({d.list_paging}); `count` is still the total."
            ),
            why="The spec says `all` sessions, but every large list gets paged or cut.",
        ))
    if d.ignore_tag_filter:
        out.append(Deviation(
            key="list-tag-filter-dropped",
            endpoint=LIST,
            path="",
            values=(),
            what="`tags` is ignored: the list answers every session of the key.",
            why=(
                "A provider or proxy that drops the filter; a clean-up that trusts the "
                "list ends sessions that are not its own."
            ),
        ))
    return tuple(out)


def deviations_for(profile: Any) -> tuple[Deviation, ...]:
    """Every deviation a profile (anything with a `dialect`) serves, default ones included."""
    return (*_dialect_deviations(profile.dialect), *_ALWAYS)


DEVIATIONS: tuple[Deviation, ...] = (*_dialect_deviations(DialectParams()), *_ALWAYS)


def tolerated_values(path: str, deviations: tuple[Deviation, ...] = DEVIATIONS) -> frozenset[str]:
    """Out-of-spec values the simulator may put at the dotted JSON `path`."""
    return frozenset(v for d in deviations if d.path == path for v in d.values)
