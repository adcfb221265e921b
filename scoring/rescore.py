"""Rescoring every member under a rules version: a dry run that writes nothing, and an
apply that puts the version in force and refreshes every score through ``scores_refresh``.

The dry run reads the scores and metrics in chunks (keyset on member id, one query each)
and runs the formula in memory. The apply activates the version first, then refreshes the
members chunk by chunk, one durable transaction each, with cause ``rules``; because
``scores_refresh`` is the only writer of scores it keeps every guarantee of the batch: award
points come from the metrics untouched, badge claims are only ever added, a ScoreHistory row
(with the new version) only where the total changed, exactly one TierChange per member
whose tier moved. Running the apply again changes nothing more: the totals already are what
the version gives (as of the same day).
"""

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TypedDict, Unpack

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from scoring.formula import activity_score
from scoring.models import RescoreJob, TierChange, UserScore
from scoring.rules import rules_activate, rules_for_version, rules_get
from scoring.scores import scores_refresh, utc_today
from scoring.tiers import tier_for_total
from scoring.wakeups import rescore_job_queue

CHUNK_SIZE = 5000
# How many of the biggest movers (and of the tier moves) a report keeps.
REPORT_MOVERS = 200


@dataclass(frozen=True)
class MemberMove:
    """One member's total and tier before and after (``old`` = as stored now)."""

    member_id: int
    username: str
    old_total: int
    new_total: int
    old_tier: int
    new_tier: int

    @property
    def delta(self) -> int:
        """new total - old total."""
        return self.new_total - self.old_total

    def as_json(self) -> dict:
        """The move as the report stores it."""
        return {
            "username": self.username,
            "old_total": self.old_total,
            "new_total": self.new_total,
            "old_tier": self.old_tier,
            "new_tier": self.new_tier,
        }


@dataclass
class RescoreReport:
    """What a rescore changes (dry run) or changed (apply)."""

    version: int
    applied: bool
    members: int = 0
    changed: int = 0
    up: int = 0
    down: int = 0
    tier_changes: int = 0
    # (|delta|, member id, move): a bounded heap of the biggest movers.
    _movers: list = field(default_factory=list)
    tier_moves: list[MemberMove] = field(default_factory=list)

    def add(self, move: MemberMove) -> None:
        """Count one member."""
        self.members += 1
        if move.delta:
            self.changed += 1
            if move.delta > 0:
                self.up += 1
            else:
                self.down += 1
            item = (abs(move.delta), -move.member_id, move)
            if len(self._movers) < REPORT_MOVERS:
                heapq.heappush(self._movers, item)
            elif item[:2] > self._movers[0][:2]:
                heapq.heapreplace(self._movers, item)
        if move.new_tier != move.old_tier:
            self.tier_changes += 1
            if len(self.tier_moves) < REPORT_MOVERS:
                self.tier_moves.append(move)

    @property
    def movers(self) -> list[MemberMove]:
        """The biggest movers, biggest change first."""
        return [m for *_, m in sorted(self._movers, key=lambda i: i[:2], reverse=True)]

    def summary(self) -> dict:
        """The one-line summary of SPEC §10: members, changed, up, down, tier_changes,
        applied."""
        return {
            "members": self.members,
            "changed": self.changed,
            "up": self.up,
            "down": self.down,
            "tier_changes": self.tier_changes,
            "applied": self.applied,
        }

    def as_json(self) -> dict:
        """The whole report for ``RescoreJob.report``."""
        return {
            "version": self.version,
            **self.summary(),
            "movers": [m.as_json() for m in self.movers],
            "tier_moves": [m.as_json() for m in self.tier_moves],
        }


Progress = Callable[[int], None]
OnMoves = Callable[[list[MemberMove]], None]


class RescoreOptions(TypedDict, total=False):
    """The options of ``rescore_dry_run`` and ``rescore_apply``: ``as_of`` (default today,
    UTC), ``chunk_size`` (default ``CHUNK_SIZE``), ``progress`` (the members done so far,
    after each chunk) and ``on_moves`` (each chunk's members whose total or tier moves)."""

    as_of: date | None
    chunk_size: int
    progress: Progress | None
    on_moves: OnMoves | None


def _report_chunk(
    report: RescoreReport, chunk: Iterable[MemberMove], options: RescoreOptions
) -> None:
    """Count a chunk's moves in ``report``, then tell ``on_moves`` and ``progress``."""
    moves = []
    for move in chunk:
        report.add(move)
        if move.delta or move.new_tier != move.old_tier:
            moves.append(move)
    on_moves, progress = options.get("on_moves"), options.get("progress")
    if on_moves is not None and moves:
        on_moves(moves)
    if progress is not None:
        progress(report.members)


def rescore_member_count() -> int:
    """How many members a rescore goes through (every member with a score)."""
    return UserScore.objects.count()


def _chunks(chunk_size: int) -> Iterator[list[int]]:
    """Member ids with a score, in ascending chunks (keyset pagination, one query each)."""
    last = 0
    while True:
        ids = list(
            UserScore.objects.filter(member_id__gt=last)
            .order_by("member_id")
            .values_list("member_id", flat=True)[:chunk_size]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def rescore_dry_run(*, version: int, **options: Unpack[RescoreOptions]) -> RescoreReport:
    """What applying ``version`` (with ``settings.SCORING`` on top) would do to every
    member's total and tier, as of ``as_of`` (default today, UTC). Writes nothing.

    Raises ``ScoringRules.DoesNotExist`` for an unknown version. One query per chunk of
    ``chunk_size`` members; ``progress`` gets the members done so far after each chunk and
    ``on_moves`` the chunk's members whose total or tier would change.
    """
    rules = rules_for_version(version)
    as_of = options.get("as_of") or utc_today()
    chunk_size = options.get("chunk_size", CHUNK_SIZE)
    report = RescoreReport(version=version, applied=False)
    last = 0
    while True:
        rows = list(
            UserScore.objects.filter(member_id__gt=last)
            .order_by("member_id")
            .values_list(
                "member_id",
                "username",
                "total_score",
                "tier",
                "member__metrics__event_counts",
                "member__metrics__active_dates",
                "member__metrics__award_points",
            )[:chunk_size]
        )
        if not rows:
            break
        chunk = []
        for member_id, username, old_total, old_tier, counts, dates, points in rows:
            activity = activity_score(
                event_counts=counts or {},
                active_dates=dates or [],
                as_of=as_of,
                constants=rules.constants,
            ).activity
            total = activity + (points or 0)
            chunk.append(
                MemberMove(
                    member_id, username, old_total, total, old_tier, tier_for_total(total).ordinal
                )
            )
        last = rows[-1][0]
        _report_chunk(report, chunk, options)
    return report


def rescore_apply(*, version: int, **options: Unpack[RescoreOptions]) -> RescoreReport:
    """Put ``version`` in force and rescore every member with it, as of ``as_of``.

    Activation commits first, so from then on every refresh (score batch, awards) uses the
    version; then each chunk of members is refreshed in its own durable transaction
    through ``scores_refresh`` with cause ``rules``. Guarantees: award points and badge
    claims are never taken away (claims may be added for a tier reached); one TierChange
    per member whose tier moved; ScoreHistory rows record the version; re-running (or
    resuming after a crash) has no further effect (on a later day, beyond ``as_of`` and
    ``computed_at``). Raises ``ScoringRules.DoesNotExist`` for an unknown version.
    """
    rules_for_version(version)  # validate before changing anything
    with transaction.atomic(durable=True):
        rules_activate(version=version)
    report = RescoreReport(version=version, applied=True)
    as_of = options.get("as_of") or utc_today()
    for ids in _chunks(options.get("chunk_size", CHUNK_SIZE)):
        with transaction.atomic(durable=True):
            results = scores_refresh(member_ids=ids, cause=TierChange.Cause.RULES, as_of=as_of)
            usernames = dict(
                UserScore.objects.filter(member_id__in_ids=list(results)).values_list(
                    "member_id", "username"
                )
            )
        chunk = (
            MemberMove(
                member_id,
                usernames.get(member_id, ""),
                result.previous_total,
                result.total_score,
                result.previous_tier,
                result.tier,
            )
            for member_id, result in results.items()
        )
        _report_chunk(report, chunk, options)
    return report


# --- Jobs (the staff page) ------------------------------------------------------------------


def rescore_job_create(*, version: int, kind: str, requested_by: User | None = None) -> RescoreJob:
    """Queue a dry run or an apply of ``version`` for a worker; the task is sent when the
    job row commits. Raises ``ScoringRules.DoesNotExist`` for an unknown version."""
    rules = rules_get(version=version)
    with transaction.atomic():
        job = RescoreJob.objects.create(
            rules=rules,
            kind=kind,
            requested_by=requested_by,
            members_total=rescore_member_count(),
        )
        rescore_job_queue(job.pk)
    return job


def rescore_job_run(*, job_id: int) -> int:
    """Run a queued rescore job, recording progress on the job row; returns members done.

    Safe to deliver twice: only a queued (or a crashed, still running) job is started, a
    finished one is left alone, and the apply itself is re-runnable without double effects.
    A failure marks the job failed with the error.
    """
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in (RescoreJob.State.DONE, RescoreJob.State.FAILED):
            return 0
        job.state = RescoreJob.State.RUNNING
        job.started_at = timezone.now()
        job.members_done = 0
        job.save(update_fields=["state", "started_at", "members_done"])

    def progress(done: int) -> None:
        RescoreJob.objects.filter(pk=job_id).update(members_done=done)

    run = rescore_apply if job.kind == RescoreJob.Kind.APPLY else rescore_dry_run
    try:
        report = run(version=job.rules_id, progress=progress)
    except Exception as exc:
        RescoreJob.objects.filter(pk=job_id).update(
            state=RescoreJob.State.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    RescoreJob.objects.filter(pk=job_id).update(
        state=RescoreJob.State.DONE,
        report=report.as_json(),
        members_done=report.members,
        members_total=report.members,
        finished_at=timezone.now(),
    )
    return report.members
