"""End what a run left behind, only what is ours, and say truthfully what could not be ended.

Three moves, each retrying transient failures (429, 5xx, network, an unfollowed
redirect) with full-jitter backoff and the target's Retry-After:

* *resolve*: requests whose journey was cut short are polled until they show a
  session (then it is ended) or cannot have one; fair (oldest attempt first) and
  concurrent.  The reaper runs it mid-run on abandoned requests; the end of the run
  on everything left.
* *sweep*: the run's tag is listed (every page) and each session of ours that is not
  over is ended.  A listed item is ours only if it carries the tag (or is a session
  this run saw): a provider or proxy that ignores the tag filter must not cost other
  sessions on the key their life.  A session is alive unless its status word says it
  ended; a word we do not know is checked with a status call, never assumed.
* *report*: every session not confirmed ended, by id, and a count that is the truth.
  A DELETE answered 2xx / 401 / 404 / 410 confirms the end of a session the run saw;
  what the run never saw (creates whose answer was lost, requests the provider
  forgot) is covered only by a complete listing of the tag with nothing of ours alive.

No gevent or Locust here: the caller injects the clock, sleep, random source and a
`parallel` runner (a gevent pool in the harness, plain loops in the tests).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.measure.api import (
    ListedSession,
    ProtocolViolation,
    Reply,
    data_of,
    ended_by_delete,
    parse_list,
    parse_status,
    session_state,
)
from bench.measure.retry import RetryPolicy

log = logging.getLogger("bench")

MAX_PAGES = 1000  # a listing longer than this is not believed complete
PARALLEL = 8  # concurrent calls of one clean-up pass
# DELETEs of a known session that failed (each after its retries) before the resolve
# passes stop trying it: it is named in the report and tried once more at the sweep.
# A request whose status answers are unusable is NOT given up on: it may still become
# a session, which only waiting (bounded by the deadline) and the sweep can end.
MAX_STRIKES = 5

Parallel = Callable[[Iterable[Callable[[], None]]], None]


def sequential(tasks: Iterable[Callable[[], None]]) -> None:
    for task in tasks:
        task()


class CleanupClient(Protocol):
    def status(self, request_id: str) -> Reply: ...
    def release(self, session_id: str) -> Reply: ...
    def get_session(self, session_id: str) -> Reply: ...
    def list_sessions(self, tag: str, **page: str) -> Reply: ...


@dataclass
class Orphans:
    """Requests and sessions a process created but has not seen ended."""

    # request_id -> session_id (None until the request is seen with a session)
    open: dict[str, str | None] = field(default_factory=dict)
    # requests the provider no longer answers for (status 404 / 410) before we saw a
    # session: only a listing by tag can tell whether they made one
    lost: set[str] = field(default_factory=set)
    # creates whose answer was lost (network error, gateway 502 / 504, unreadable 2xx):
    # no request id at all, so again only a listing can tell
    lost_creates: int = 0
    # request_id -> unusable answers so far (see MAX_STRIKES)
    strikes: dict[str, int] = field(default_factory=dict)

    def request(self, request_id: str) -> None:
        self.open.setdefault(request_id, None)

    def session(self, request_id: str, session_id: str) -> None:
        self.open[request_id] = session_id

    def closed(self, request_id: str) -> None:
        self.open.pop(request_id, None)
        self.lost.discard(request_id)
        self.strikes.pop(request_id, None)

    def strike(self, request_id: str) -> None:
        """One more failed DELETE of this request's session (see MAX_STRIKES)."""
        self.strikes[request_id] = self.strikes.get(request_id, 0) + 1

    def lose(self, request_id: str) -> None:
        self.open.pop(request_id, None)
        self.lost.add(request_id)


@dataclass
class Listing:
    """Every item the list endpoint gave for the tag, and whether that is all of them."""

    items: list[ListedSession]
    complete: bool
    pages: int
    error: str | None = None


@dataclass
class Cleaner:
    """The clean-up's calls and policy over one kept-alive client."""

    client: CleanupClient
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random = field(default_factory=random.Random)
    parallel: Parallel = sequential
    attempts: int = 5
    backoff_base_s: float = 0.25  # the first backoff window; the run passes its poll interval

    def _retry(self, deadline: float) -> RetryPolicy:
        return RetryPolicy(
            self.clock, self.sleep, self.rng, deadline, attempts=self.attempts,
            base_s=self.backoff_base_s,
        )  # fmt: skip

    # --- single sessions and requests --------------------------------------------------

    def end_session(self, session_id: str, deadline: float) -> bool:
        """DELETE (with retries); True when an answer says the session is over.

        Only a DELETE answer confirms: 2xx (ended now) or 401 / 404 / 410 (already over,
        e.g. by an earlier try whose answer was lost, or a 500 that did end it).  A
        session found over some other way may have died of its idle timeout after being
        billed all along: that is not an end the harness can claim.
        """
        reply = self._retry(deadline).call(lambda: self.client.release(session_id))
        return ended_by_delete(reply.status)

    def session_over(self, session_id: str, deadline: float) -> bool | None:
        """Ask the provider about one session: True ended, False alive, None unknown."""
        reply = self._retry(deadline).call(lambda: self.client.get_session(session_id))
        if reply.status in (401, 404, 410):
            return True  # it no longer knows the session: the spec's answer for ended
        if reply.status != 200:
            return None
        try:
            data = data_of(reply.body)
        except ProtocolViolation:
            return None
        word = data.get("status")
        return session_state(word if isinstance(word, str) else None)

    def resolve_one(self, orphans: Orphans, request_id: str, deadline: float) -> bool:
        """Take one open request as far as it goes now; True when it ended a session."""
        session_id = orphans.open.get(request_id)
        if session_id is None:
            reply = self._retry(deadline).call(lambda: self.client.status(request_id))
            if reply.status in (404, 410):
                orphans.lose(request_id)  # forgotten: only a listing can find its session
                return False
            if reply.status != 200:
                return False  # try again later
            try:
                answer = parse_status(reply.body)
            except ProtocolViolation:
                return False  # unreadable now; it may still become a session: later
            if answer.status in ("failed", "cancelled"):
                orphans.closed(request_id)  # no session was produced
                return False
            if answer.session_id is None:
                if answer.status == "completed":
                    orphans.closed(request_id)  # its session finished its lifecycle
                return False  # pending, processing, or ready before the session exists
            session_id = answer.session_id
            orphans.session(request_id, session_id)
        if self.end_session(session_id, deadline):
            orphans.closed(request_id)
            return True
        # A session that will not end stays open (named in the report); it is tried
        # again at the sweep, not on every pass.
        orphans.strike(request_id)
        return False

    def resolve(
        self,
        orphans: Orphans,
        *,
        deadline: float,
        poll_interval: float,
        only: set[str] | None = None,
    ) -> int:
        """Pass over the open requests (all, or `only` those) until none is left or the deadline.

        Returns how many sessions it ended.  What is still open then stays in `orphans`.
        Each pass takes the requests oldest-attempt first, `PARALLEL` at a time, and
        checks the deadline before every request: a hung target costs one call past
        it, not N.
        """
        ended: list[bool] = []

        def task(request_id: str) -> Callable[[], None]:
            def run() -> None:
                if self.clock() < deadline and request_id in orphans.open:
                    ended.append(self.resolve_one(orphans, request_id, deadline))

            return run

        def wanted(request_id: str) -> bool:
            return (only is None or request_id in only) and orphans.strikes.get(
                request_id, 0
            ) < MAX_STRIKES

        queue: deque[str] = deque(r for r in orphans.open if wanted(r))
        while queue and self.clock() < deadline:
            batch = list(queue)
            queue.clear()
            self.parallel(task(r) for r in batch)
            queue.extend(r for r in batch if r in orphans.open and wanted(r))
            if queue:
                self.sleep(min(poll_interval, max(0.0, deadline - self.clock())))
        return sum(ended)

    # --- the tag ---------------------------------------------------------------------------

    def list_tagged(self, tag: str, deadline: float) -> Listing:
        """Every page of the tag's listing (cursor or page numbers), and whether it is all."""
        items: dict[str, ListedSession] = {}
        pages = 0
        cursor: str | None = None
        page_number = 1
        count: int | None = None
        while pages < MAX_PAGES:
            params: dict[str, str] = {}
            if cursor is not None:
                params["cursor"] = cursor
            elif page_number > 1:
                params["page"] = str(page_number)
            reply = self._retry(deadline).call(
                lambda params=params: self.client.list_sessions(tag, **params)  # type: ignore[misc]
            )
            if reply.status != 200:
                return Listing(list(items.values()), False, pages, f"list answered {reply.status}")
            try:
                page = parse_list(reply.body)
            except ProtocolViolation as exc:
                return Listing(list(items.values()), False, pages, f"list not understood: {exc}")
            pages += 1
            new = [item for item in page.items if item.session_id not in items]
            for item in page.items:
                items[item.session_id] = item
            if page.count is not None:
                count = page.count
            if page.next_cursor:
                cursor = page.next_cursor
                continue
            if cursor is not None or count is None or len(items) >= count:
                break  # the cursor ran out, or nothing says there is more
            if not new:
                # More is said to exist but asking for the next page brings nothing new.
                return Listing(
                    list(items.values()), False, pages,
                    f"the list says {count} sessions but gave {len(items)}",
                )  # fmt: skip
            page_number += 1
        else:
            return Listing(list(items.values()), False, pages, f"more than {MAX_PAGES} pages")
        complete = count is None or len(items) >= count
        error = None if complete else f"the list says {count} sessions but gave {len(items)}"
        return Listing(list(items.values()), complete, pages, error)

    def sweep(self, tag: str, known: set[str], deadline: float) -> dict[str, Any]:
        """End every live session of ours under the tag; what stayed alive, by a second listing."""
        first = self.list_tagged(tag, deadline)
        ours, not_ours = _split_ours(first.items, tag, known)
        to_end = [s.session_id for s in ours if not self._over(s, deadline)]
        ended: list[str] = []

        def end(session_id: str) -> Callable[[], None]:
            def run() -> None:
                if self.end_session(session_id, deadline):
                    ended.append(session_id)

            return run

        self.parallel(end(s) for s in to_end)
        after = self.list_tagged(tag, deadline)
        still, _ = _split_ours(after.items, tag, known)
        over = set(ended)
        alive: list[str] = []
        for session in still:
            if session.session_id in over:
                continue
            if self._over(session, deadline):
                over.add(session.session_id)
            else:
                alive.append(session.session_id)
        return {
            "ended_by_sweep": len(ended),
            "left_alive_ids": sorted(alive),
            "ended_ids": set(ended),
            "listing_complete": first.complete and after.complete,
            "listing_error": first.error or after.error,
            "listed": len(first.items),
            "listed_not_ours": not_ours,
        }

    def _over(self, item: ListedSession, deadline: float) -> bool:
        state = session_state(item.status)
        if state is None:
            # A word we do not know: ask the provider rather than assume either way.
            state = self.session_over(item.session_id, deadline)
        return state is True


def _split_ours(
    items: list[ListedSession], tag: str, known: set[str]
) -> tuple[list[ListedSession], int]:
    """(ours, how many are not): ours carry the tag, or are a session this run saw."""
    ours = [s for s in items if (s.tags is not None and tag in s.tags) or s.session_id in known]
    return ours, len(items) - len(ours)


def unswept_report(orphans: Orphans) -> dict[str, Any]:
    """The clean-up report before (or without) a sweep: what is known not to be ended."""
    unended = sorted({sid for sid in orphans.open.values() if sid})
    pending = sorted(rid for rid, sid in orphans.open.items() if not sid)
    lost = sorted(orphans.lost)
    return {
        "ended_by_sweep": 0,
        "left_alive": 0,
        "left_alive_ids": [],
        "unended_session_ids": unended,
        "unresolved_request_ids": pending,
        "lost_request_ids": lost,
        "lost_creates": orphans.lost_creates,
        "sweep_ok": False,
        "leaked": len(unended) + len(pending) + len(lost) + orphans.lost_creates,
    }


def final_report(
    cleaner: Cleaner | None,
    orphans: Orphans,
    tag: str,
    deadline: float,
    poll_interval: float = 0.25,
) -> dict[str, Any]:
    """Sweep the tag and say, truthfully, which sessions are not confirmed ended.

    Requests still pending at the end (their status could not be read, say) may yet
    become sessions: a queued one gets its browser only when another session ends.  So
    the sweep is repeated, a poll interval apart, until as many sessions the run had
    not seen were found and ended as there were pending requests (each makes at most
    one), or the deadline passes.

    Counted as not confirmed: sessions of ours still alive after the sweep; sessions
    this run saw that no DELETE of ours could end (if they are over now, they died of
    their idle timeout, billed until then); pending requests no ended session accounts
    for.  Requests the provider forgot and creates whose answer was lost are covered
    only by a complete listing (their sessions carry the tag): without one they count.
    """
    report = unswept_report(orphans)
    if cleaner is None:
        log.warning("no target to clean up: leaks cannot be ruled out")
        return report
    known = {sid for sid in orphans.open.values() if sid}
    pending = report["unresolved_request_ids"]
    ended: set[str] = set()
    while True:
        swept = cleaner.sweep(tag, known, deadline)
        ended |= swept.pop("ended_ids")
        found = len(ended - known)  # sessions the run never saw: its pending requests'
        if found >= len(pending) or not swept["listing_complete"]:
            break
        if cleaner.clock() + poll_interval >= deadline:
            break
        cleaner.sleep(poll_interval)
    complete = bool(swept["listing_complete"])
    alive = set(swept["left_alive_ids"])
    # Sessions this run saw but never heard a DELETE answer end: one more try each.
    unended = {s for s in sorted(known - alive - ended) if not cleaner.end_session(s, deadline)}
    uncovered = 0 if complete else len(orphans.lost) + orphans.lost_creates
    unaccounted = max(0, len(pending) - len(ended - known))
    report.update(
        ended_by_sweep=len(ended),
        left_alive=len(alive),
        left_alive_ids=sorted(alive),
        unended_session_ids=sorted(unended),
        sweep_ok=complete,
        listing_error=swept["listing_error"],
        listed=swept["listed"],
        listed_not_ours=swept["listed_not_ours"],
        leaked=len(alive | unended) + unaccounted + uncovered,
    )
    if not complete:
        log.warning(
            "could not list every session carrying the run's tag (%s): sessions the run "
            "lost track of cannot be ruled out",
            swept["listing_error"],
        )
    return report


__all__ = [
    "PARALLEL",
    "Cleaner",
    "CleanupClient",
    "Listing",
    "Orphans",
    "final_report",
    "sequential",
    "unswept_report",
]
