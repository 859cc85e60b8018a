"""The dialect layer: how answers read where the spec and the doc leave room, and its counts.

Pure (no sockets): the HTTP layer asks it what to answer and it counts what was served.
The model holds what is true (session words, phase-first, late session rows, foreign
sessions); this layer shapes each answer (list paging and tag filtering, DELETE codes,
status rewrites, Retry-After forms, redirects, create's code, extra fields) and keeps
the per-feature counters that /_sim/counters shows under `dialect`.

Its random draws come from a stream of their own, so a dialect never shifts the model's
or the fault injector's draws of a seeded run.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from bench.simulator import bodies
from bench.simulator.faults import format_retry_after
from bench.simulator.model import EndResult, SessionView
from bench.simulator.profile import DialectParams
from bench.simulator.validate import InputError

# Error messages of the DELETE answers a dialect may choose.
_DELETE_MESSAGES = {
    401: "Invalid API Key or browser session ID",  # the spec's wording
    404: "Session not found",
    410: "Session has already ended",
    500: "Internal Server Error",
}
SAME_ORIGIN, OTHER_ORIGIN = "same_origin", "other_origin"


class Dialect:
    """One profile's [dialect] applied to answers, with counters of what it served."""

    def __init__(self, params: DialectParams, *, rng: random.Random, time_scale: float) -> None:
        self.params = params
        self._rng = rng
        self._time_scale = time_scale
        p = params
        # Whether status answers can be served from cached bytes: nothing per answer.
        self.status_is_static = (
            p.no_progress_rate == 0
            and p.unknown_phase_rate == 0
            and p.phase_ready_lead_s == 0
            and p.session_lag_s == 0
            and p.status_after_end == "completed"
        )
        self._gone_after_end = p.status_after_end == "404"  # read on every poll
        self.redirecting = p.redirect_rate > 0  # checked first, so no-redirect costs nothing
        self._redirect_endpoints = frozenset(p.redirect_endpoints)
        # URLs redirected to the same origin, waiting for the client's follow-up, which is
        # served: with the same path a follow-up could otherwise be redirected for ever.
        self._tickets: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._unknown_phases: Counter[str] = Counter()
        self._after_end: Counter[str] = Counter()
        self._delete_answers: Counter[str] = Counter()
        self._delete_results: Counter[str] = Counter()
        self._redirects: dict[str, Counter[str]] = {
            "code": Counter(), "target": Counter(), "endpoint": Counter()
        }
        self._retry_after: Counter[str] = Counter()

    # ------------------------------------------------------------------ any body

    def decorate(self, body: Any) -> Any:
        """The body with the dialect's extra fields (when on); every API body passes here."""
        return bodies.with_extra_fields(body) if self.params.extra_fields else body

    # ------------------------------------------------------------------ status

    @staticmethod
    def after_end(view: Any) -> bool:
        """Whether a status view is that of a request whose session has ended.

        `completed` with a session: a request completed without ever being ready (an
        anomaly) has no session and keeps its `completed`.
        """
        return view.status == "completed" and view.session is not None

    def status_gone(self, view: Any) -> bool:
        """True when this answer must be 404 because the session ended (counted)."""
        if self._gone_after_end and self.after_end(view):
            self._after_end["404"] += 1
            return True
        return False

    def rewrite_status(self, body: dict[str, Any], *, after_end: bool) -> dict[str, Any]:
        """Apply the per-answer status dialect to a status body (in place) and count it."""
        p = self.params
        data = body["data"]
        if after_end and p.status_after_end == "ready":
            # Counted only when changed: the default `completed` is the model's own word.
            data["status"] = "ready"  # the request's last live word; session says ended
            self._after_end["ready"] += 1
        rng = self._rng
        progress = data.get("progress")
        if progress is not None and p.no_progress_rate and rng.random() < p.no_progress_rate:
            del data["progress"]
            self._counts["polls_without_progress"] += 1
        elif (
            progress is not None
            and p.unknown_phase_rate
            and rng.random() < p.unknown_phase_rate
        ):
            word = rng.choice(p.unknown_phases)
            progress["current_phase"] = word
            self._unknown_phases[word] += 1
        phase = data.get("progress", {}).get("current_phase")
        if data["status"] != "ready" and phase == "ready":
            self._counts["phase_ready_before_status"] += 1
        if data["status"] == "ready" and "session" not in data:
            self._counts["ready_without_session"] += 1
        return self.decorate(body)

    # ------------------------------------------------------------------ list

    def list_body(
        self, views: Sequence[SessionView], query: Mapping[str, str], keys: Sequence[str]
    ) -> dict[str, Any]:
        """The list answer for the filtered `views` (oldest first), paged as the dialect says.

        Raises InputError (400) for a malformed page, limit or cursor.
        """
        p = self.params
        total = len(views)
        mode = p.list_paging
        cursor: object = bodies.NO_CURSOR
        if mode == "truncate":
            items = views[: p.list_page_size]
            more = len(items) < total
        elif mode == "page":
            # Offset paging, as such APIs do: a session ending between two pages shifts
            # the later ones, so a client that ends sessions while paging can skip some.
            page = _positive_int(query, keys, "page", 1)
            limit = min(_positive_int(query, keys, "limit", p.list_page_size), p.list_page_size)
            items = views[(page - 1) * limit : page * limit]
            more = page * limit < total
        elif mode == "cursor":
            # The cursor names the last session served, so ending sessions between calls
            # skips none of the rest.
            after = _cursor_position(query, keys)
            rest = [v for v in views if v.seq > after]
            items = rest[: p.list_page_size]
            more = len(rest) > len(items)
            cursor = encode_cursor(items[-1].seq) if more else None
        else:
            items = list(views)
            more = False
        self._counts["list_answers"] += 1
        self._counts["list_items_served"] += len(items)
        if more:
            self._counts["list_answers_with_more"] += 1
        return self.decorate(bodies.session_list(items, total=total, next_cursor=cursor))

    def list_tags(self, tags: list[str]) -> list[str]:
        """The tags the list really filters on (none when the dialect drops the filter)."""
        if self.params.ignore_tag_filter:
            if tags:
                self._counts["list_tag_filter_ignored"] += 1
            return []
        return tags

    # ------------------------------------------------------------------ delete

    def delete_answer(self, result: EndResult) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, body or None for an empty 204) of a DELETE the model handled."""
        p = self.params
        self._delete_results[result.value] += 1
        if result is EndResult.ENDED:
            if p.delete_500_rate and self._rng.random() < p.delete_500_rate:
                # The session did end: the answer was lost on the way back.
                self._counts["delete_ended_answered_500"] += 1
                status = 500
            else:
                status = p.delete_status
        elif result is EndResult.ALREADY_ENDED:
            status = p.delete_ended_status
        else:
            status = p.delete_unknown_status
        self._delete_answers[str(status)] += 1
        if status == 204:
            return 204, None
        if status == 200:
            return 200, self.decorate(bodies.success())
        return status, self.decorate(bodies.error(status, _DELETE_MESSAGES[status]))

    # ------------------------------------------------------------------ Retry-After

    def retry_after(self, seconds: float, wall_now: float, status: int) -> str:
        """The Retry-After value for a delay of `seconds` (already scaled), counted by status."""
        self._retry_after[str(status)] += 1
        fmt = self.params.retry_after_format
        if fmt == "decimal":
            return _decimal(seconds)
        if fmt == "http_date":
            # IMF-fixdate has whole seconds: round the instant up, never early.
            return email.utils.formatdate(math.ceil(wall_now + max(0.0, seconds)), usegmt=True)
        return format_retry_after(seconds, self._time_scale)

    # ------------------------------------------------------------------ redirects

    def redirect(self, endpoint: str, url: str) -> tuple[int, str] | None:
        """(status code, target) when this request is to be redirected, else None.

        `url` is the request's path and query; a request for a URL just redirected to the
        same origin is the client's follow-up and is served.
        """
        if not self.redirecting or endpoint not in self._redirect_endpoints:
            return None
        if self._tickets[url]:
            self._tickets[url] -= 1
            if not self._tickets[url]:
                del self._tickets[url]
            self._counts["redirect_follow_ups"] += 1
            return None
        p = self.params
        rng = self._rng
        if rng.random() >= p.redirect_rate:
            return None
        code = rng.choice(p.redirect_codes)
        target = rng.choice(p.redirect_targets)
        if target == SAME_ORIGIN:
            self._tickets[url] += 1
        self._counts["redirects"] += 1
        for kind, value in (("code", str(code)), ("target", target), ("endpoint", endpoint)):
            self._redirects[kind][value] += 1
        return code, target

    # ------------------------------------------------------------------ counters

    def counters(self) -> dict[str, Any]:
        """What the dialect served; every key always present (0 / {} when unused)."""
        c = self._counts
        return {
            "polls_without_progress": c["polls_without_progress"],
            "unknown_phases_served": sum(self._unknown_phases.values()),
            "unknown_phases_by_word": dict(self._unknown_phases),
            "phase_ready_before_status": c["phase_ready_before_status"],
            "ready_without_session": c["ready_without_session"],
            "status_after_end": dict(self._after_end),
            "delete_answers": dict(self._delete_answers),
            "delete_results": dict(self._delete_results),
            "delete_ended_answered_500": c["delete_ended_answered_500"],
            "list_answers": c["list_answers"],
            "list_items_served": c["list_items_served"],
            "list_answers_with_more": c["list_answers_with_more"],
            "list_tag_filter_ignored": c["list_tag_filter_ignored"],
            "redirects": c["redirects"],
            "redirects_by_code": dict(self._redirects["code"]),
            "redirects_by_target": dict(self._redirects["target"]),
            "redirects_by_endpoint": dict(self._redirects["endpoint"]),
            "redirect_follow_ups": c["redirect_follow_ups"],
            "retry_after_served": dict(self._retry_after),
        }


def _decimal(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") or "0"


def _one(query: Mapping[str, str], keys: Sequence[str], key: str) -> str | None:
    if list(keys).count(key) > 1:
        raise InputError(f"Query parameter {key!r} given more than once")
    return query.get(key)


def _positive_int(query: Mapping[str, str], keys: Sequence[str], key: str, default: int) -> int:
    text = _one(query, keys, key)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise InputError(f"Query parameter {key!r} must be an integer >= 1")
    return int(text)


def encode_cursor(seq: int) -> str:
    """An opaque cursor naming the session at list position `seq` (the last one served)."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def _cursor_position(query: Mapping[str, str], keys: Sequence[str]) -> int:
    text = _one(query, keys, "cursor")
    if text is None or text == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    prefix, _, number = raw.partition(":")
    if prefix != "after" or not number.isdigit():
        raise InputError("Query parameter 'cursor' is not a cursor this API gave")
    return int(number)


__all__ = ["OTHER_ORIGIN", "SAME_ORIGIN", "Dialect", "encode_cursor"]
