"""Reads for the staff pages: pipeline health, award lists, member details, grant previews.

Every function here issues a fixed number of queries whatever the number of rows (joins
via ``select_related``, aggregates in SQL), so the staff pages stay fast on a large ledger.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from awards.models import Award
from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    PipelineRun,
    TelemetryEvent,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.tiers import Tier, tier_for_total, tier_get

# A worker that wrote its heartbeat within this many seconds counts as answering.
WORKER_ALIVE_S = 90
# A member's staff page lists this many awards; the full list is on /staff/awards/.
MEMBER_HISTORY_LIMIT = 100
HEATMAP_WEEKS = 53
HEATMAP_CELL = 11
HEATMAP_GAP = 2
HEATMAP_TOP = 14
HEATMAP_LEFT = 26


# --- dashboard --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageStatus:
    """One pipeline stage's last run, judged against how often it should run."""

    kind: str
    label: str
    run: PipelineRun | None
    state: str  # "ok", "late" or "never"
    last_seen: datetime | None


@dataclass(frozen=True)
class PipelineHealth:
    """What the staff dashboard's health panel shows."""

    # Capped at COUNT_CAP + 1 (shown as "10,000+").
    pending_events: int
    rejected_events: int
    pending_snapshots: int
    oldest_pending_at: datetime | None
    stages: list[StageStatus]
    worker_alive: bool
    worker_last_seen: datetime | None
    recent_rejections: list[TelemetryEvent]
    checked_at: datetime


def _last_seen(run: PipelineRun | None) -> datetime | None:
    if run is None:
        return None
    moments = [m for m in (run.last_started_at, run.last_finished_at) if m is not None]
    return max(moments) if moments else None


# Queue counts above this are shown as "10,000+".
COUNT_CAP = 10_000


def _capped_count(queryset: QuerySet) -> int:
    """``min(count, COUNT_CAP + 1)`` in one query that reads at most COUNT_CAP + 1 rows."""
    return queryset.values("pk")[: COUNT_CAP + 1].count()


def pipeline_health(*, now: datetime | None = None) -> PipelineHealth:
    """Queue sizes, the last run of each stage and whether a worker answered recently.

    A stage is "late" when it has not run for three of its beat intervals (at least a
    minute), "never" when it has no run recorded; the worker is alive when its heartbeat is
    younger than ``WORKER_ALIVE_S`` seconds.
    """
    now = now or timezone.now()
    # Counts stop at COUNT_CAP: a backlog is exactly when this page is needed, and counting
    # every pending row would make it slower the longer the backlog grows. Each count reads
    # its own partial index (pending / rejected rows only), never the processed bulk.
    pending = TelemetryEvent.objects.filter(status="pending")
    pending_count = _capped_count(pending)
    rejected = _capped_count(TelemetryEvent.objects.filter(status="rejected"))
    pending_snapshots = _capped_count(MetricsSnapshot.objects.filter(processed_at__isnull=True))
    # The oldest pending event is the first one in the pending index's id order.
    oldest = pending.order_by("id").values_list("received_at", flat=True).first()
    runs = {run.kind: run for run in PipelineRun.objects.filter(kind__in=STAGES)}
    stages = []
    for kind, (label, interval) in STAGES.items():
        run = runs.get(kind)
        seen = _last_seen(run)
        allowed = timedelta(seconds=max(3 * interval(), 60))
        if seen is None:
            state = "never"
        elif now - seen > allowed:
            state = "late"
        else:
            state = "ok"
        stages.append(StageStatus(kind, label, run, state, seen))
    worker_seen = _last_seen(runs.get("worker"))
    rejections = list(
        TelemetryEvent.objects.filter(status="rejected")
        .select_related("member")
        .only("id", "event", "insert_id", "error", "received_at", "member__username")
        .order_by("-id")[:5]
    )
    return PipelineHealth(
        pending_events=pending_count,
        rejected_events=rejected,
        pending_snapshots=pending_snapshots,
        oldest_pending_at=oldest,
        stages=stages,
        worker_alive=worker_seen is not None
        and now - worker_seen < timedelta(seconds=WORKER_ALIVE_S),
        worker_last_seen=worker_seen,
        recent_rejections=rejections,
        checked_at=now,
    )


STAGES = {
    "consume": ("Event consumer", lambda: settings.CONSUME_INTERVAL_S),
    "score_batch": ("Score batch", lambda: settings.SCORE_BATCH_INTERVAL_S),
    "worker": ("Worker heartbeat", lambda: WORKER_ALIVE_S // 3),
}


# Private award reasons and staff notes show on staff pages only to holders of this
# permission (SPEC §10); any staff member may see the rest of a staff page's awards.
PRIVATE_TEXT_PERMISSION = "awards.view_award"


def award_private_text_visible(user: User | AnonymousUser) -> bool:
    """True when ``user`` may read private award reasons and staff notes on staff pages."""
    return bool(user.is_authenticated and user.is_staff and user.has_perm(PRIVATE_TEXT_PERMISSION))


def award_reason_for(award: Award, user: User | AnonymousUser) -> str | None:
    """The award's reason as ``user`` may see it on a staff page: None when it is private
    and ``user`` lacks ``awards.view_award``."""
    if award.public or award_private_text_visible(user):
        return award.reason
    return None


def award_staff_note_for(award: Award, user: User | AnonymousUser) -> str:
    """The award's staff note as ``user`` may see it on a staff page ("" when hidden)."""
    return award.staff_note if award_private_text_visible(user) else ""


def awards_recent(*, limit: int = 10) -> list[Award]:
    """The latest awards with recipient, granter and any revocation, newest first."""
    return list(
        Award.objects.select_related("recipient", "granted_by", "revocation").order_by(
            "-granted_at", "-id"
        )[:limit]
    )


def tier_changes_recent(*, limit: int = 10) -> list[TierChange]:
    """The latest tier changes of any member, newest first."""
    return list(TierChange.objects.select_related("member").order_by("-changed_at", "-id")[:limit])


# --- member search and grant preview ----------------------------------------------------------


@dataclass(frozen=True)
class MemberMatch:
    """One result of the member search."""

    username: str
    total_score: int
    tier: Tier


def members_search(*, query: str, limit: int = 8) -> list[MemberMatch]:
    """Active members whose username starts with ``query`` (then contains it), best first.

    Prefix matches come first because staff usually type the start of a handle; both are
    case-insensitive. An empty query returns nothing.
    """
    query = query.strip()
    if not query or "\x00" in query:  # no username holds NUL, and PostgreSQL refuses it
        return []
    base = User.objects.filter(is_active=True).select_related("score")
    found = list(base.filter(username__istartswith=query).order_by("username")[:limit])
    if len(found) < limit:
        seen = [u.pk for u in found]
        found += list(
            base.filter(username__icontains=query)
            .exclude(pk__in=seen)
            .order_by("username")[: limit - len(found)]
        )
    matches = []
    for user in found:
        score = _score_of(user)
        total = score.total_score if score else 0
        matches.append(MemberMatch(user.username, total, tier_for_total(total)))
    return matches


def _score_of(user: User) -> UserScore | None:
    try:
        return user.score
    except UserScore.DoesNotExist:
        return None


@dataclass(frozen=True)
class GrantPreview:
    """What granting ``points`` to a member would do to their total and tier."""

    username: str
    current_total: int
    new_total: int
    current_tier: Tier
    new_tier: Tier

    @property
    def tier_changes(self) -> bool:
        """True when the grant moves the member into another tier."""
        return self.new_tier.ordinal != self.current_tier.ordinal


def grant_preview(*, member: User, points: int) -> GrantPreview:
    """The member's current total (as last computed) and the total after ``points`` more."""
    current = member_current_total(member=member)
    new_total = current + points
    return GrantPreview(
        username=member.username,
        current_total=current,
        new_total=new_total,
        current_tier=tier_for_total(current),
        new_tier=tier_for_total(new_total),
    )


def member_current_total(*, member: User) -> int:
    """The member's last computed total, or their award points if never scored."""
    score = UserScore.objects.filter(member=member).values_list("total_score", flat=True).first()
    if score is not None:
        return score
    points = (
        MemberMetrics.objects.filter(member=member).values_list("award_points", flat=True).first()
    )
    return points or 0


def totals_for_members(*, member_ids: Iterable[int]) -> dict[int, int]:
    """Current totals for many members in one query (members never scored count 0)."""
    ids = list(member_ids)
    totals = dict.fromkeys(ids, 0)
    totals.update(
        UserScore.objects.filter(member_id__in=ids).values_list("member_id", "total_score")
    )
    return totals


# --- the award list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AwardFilters:
    """The award list's filters; empty values do not filter."""

    member: User | None = None  # the recipient
    category: str = ""
    granter: User | None = None  # the granter of record
    date_from: date | None = None
    date_to: date | None = None
    status: str = ""  # "", "active" or "revoked"


def award_list(*, filters: AwardFilters) -> QuerySet[Award]:
    """Awards matching ``filters``, newest first, with everything the list shows joined in.

    The date range is inclusive and in UTC. Every filter is served by an index of
    ``Award`` (recipient, granter, category, time), so a page costs the same on a ledger of
    any size.
    """
    qs = Award.objects.select_related(
        "recipient", "granted_by", "revocation", "revocation__revoked_by"
    ).order_by("-granted_at", "-id")
    if filters.member is not None:
        qs = qs.filter(recipient=filters.member)
    if filters.granter is not None:
        qs = qs.filter(granted_by=filters.granter)
    if filters.category:
        qs = qs.filter(category=filters.category)
    if filters.date_from:
        qs = qs.filter(granted_at__gte=_day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:
        qs = qs.filter(granted_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.status == "active":
        qs = qs.filter(revocation__isnull=True)
    elif filters.status == "revoked":
        qs = qs.filter(revocation__isnull=False)
    return qs


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def award_cursor(award: Award) -> str:
    """The keyset position of ``award`` in the list order: ``<µs since epoch>.<id>``."""
    return f"{(award.granted_at - EPOCH) // timedelta(microseconds=1)}.{award.pk}"


def _cursor_parse(cursor: str) -> tuple[datetime, int] | None:
    # Anything unreadable or out of range (a time outside years 1..9999, an id beyond the
    # database's integers) is no cursor: the list starts at the top instead of failing.
    if len(cursor) > 60:
        return None
    try:
        micros, pk = (int(part) for part in cursor.split("."))
        at = EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        return None
    if not 0 <= pk < 2**63:
        return None
    return at, pk


@dataclass(frozen=True)
class AwardPage:
    """One page of the award list and where the neighbouring pages start."""

    awards: list[Award]
    total: int
    newer: str | None  # cursor for the previous (newer) page
    older: str | None  # cursor for the next (older) page


def award_list_page(
    *, filters: AwardFilters, before: str = "", after: str = "", size: int = 50
) -> AwardPage:
    """A page of ``award_list`` by keyset: awards older than ``before`` or newer than
    ``after`` (cursors from ``award_cursor``), ``size`` at most, newest first.

    Keyset pagination reads one index range per page, so the thousandth page is as fast as
    the first (an OFFSET would read and discard every row before it). An unreadable cursor
    means the first page. Two queries: the page and the total count.
    """
    qs = award_list(filters=filters)
    position = _cursor_parse(after) if after else None
    if position is not None:
        at, pk = position
        # The plain ``granted_at >= at`` bound lets PostgreSQL start the index scan at the
        # cursor; the OR settles ties between awards granted in the same microsecond.
        newer = list(
            qs.filter(granted_at__gte=at)
            .filter(Q(granted_at__gt=at) | Q(pk__gt=pk))
            .order_by("granted_at", "id")[: size + 1]
        )
        if len(newer) <= size:
            # Back at the top: show the first page itself, with its usual boundaries.
            return award_list_page(filters=filters, size=size)
        awards, has_newer, has_older = newer[:size][::-1], True, True
    else:
        position = _cursor_parse(before) if before else None
        if position is not None:
            at, pk = position
            qs = qs.filter(granted_at__lte=at).filter(Q(granted_at__lt=at) | Q(pk__lt=pk))
        older = list(qs[: size + 1])
        has_older, awards = len(older) > size, older[:size]
        has_newer = position is not None
    return AwardPage(
        awards=awards,
        total=award_list(filters=filters).count(),
        newer=award_cursor(awards[0]) if awards and has_newer else None,
        older=award_cursor(awards[-1]) if awards and has_older else None,
    )


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- a member's staff page --------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCount:
    """Events in one command group, with its share of the busiest group (for a meter)."""

    group: str
    count: int


@dataclass(frozen=True)
class HeatCell:
    """One day of the heatmap, positioned for SVG."""

    day: date
    x: int
    y: int
    active: bool


@dataclass(frozen=True)
class Heatmap:
    """A year of active days, one column per week (Monday at the top)."""

    cells: list[HeatCell]
    months: list[tuple[int, str]]  # (x, label)
    width: int
    height: int
    active_days: int
    first: date
    last: date

    @property
    def weekday_labels(self) -> list[tuple[int, str]]:
        """(y, label) for Monday, Wednesday and Friday rows."""
        step = HEATMAP_CELL + HEATMAP_GAP
        return [(HEATMAP_TOP + day * step + HEATMAP_CELL - 2, name) for day, name in WEEKDAYS]


WEEKDAYS = [(0, "Mon"), (2, "Wed"), (4, "Fri")]


def heatmap_build(*, active_dates: Iterable[str], today: date) -> Heatmap:
    """Lay out the ``HEATMAP_WEEKS`` weeks ending with ``today``'s week as SVG cells.

    ``active_dates`` are ISO dates; dates outside the window are ignored.
    """
    step = HEATMAP_CELL + HEATMAP_GAP
    last = today
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=HEATMAP_WEEKS - 1)
    active = set()
    for value in active_dates:
        try:
            day = date.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        if first <= day <= last:
            active.add(day)
    cells = []
    months = []
    day = first
    while day <= last:
        week = (day - first).days // 7
        x = HEATMAP_LEFT + week * step
        if day.day == 1 or (day == first):
            months.append((x, day.strftime("%b")))
        cells.append(HeatCell(day, x, HEATMAP_TOP + day.weekday() * step, day in active))
        day += timedelta(days=1)
    # A label for a partial first month would collide with the next one.
    if len(months) > 1 and months[1][0] - months[0][0] < 3 * step:
        months.pop(0)
    return Heatmap(
        cells=cells,
        months=months,
        width=HEATMAP_LEFT + HEATMAP_WEEKS * step,
        height=HEATMAP_TOP + 7 * step,
        active_days=len(active),
        first=first,
        last=last,
    )


@dataclass
class MemberDetail:
    """Everything the staff member page shows about one member, except award history."""

    member: User
    score: UserScore | None
    metrics: MemberMetrics | None
    tier: Tier
    groups: list[GroupCount]
    heatmap: Heatmap
    claims: list[TierBadgeClaim] = field(default_factory=list)
    tier_changes: list[TierChange] = field(default_factory=list)

    @property
    def total(self) -> int:
        """The total score shown (0 for a member never scored)."""
        return self.score.total_score if self.score else 0

    @property
    def activity(self) -> int:
        """The activity part of the total."""
        return self.score.activity_score if self.score else 0

    @property
    def award_points(self) -> int:
        """The award part of the total."""
        return self.score.award_points if self.score else 0

    @property
    def group_max(self) -> int:
        """The busiest group's count (the meters' maximum)."""
        return max((g.count for g in self.groups), default=0)


def member_detail(*, member: User, today: date | None = None) -> MemberDetail:
    """The score, metrics, heatmap, tier claims and tier changes of one member."""
    today = today or timezone.now().date()
    score = UserScore.objects.filter(member=member).first()
    metrics = MemberMetrics.objects.filter(member=member).first()
    counts = metrics.event_counts if metrics else {}
    groups = sorted(
        (GroupCount(str(g), int(c)) for g, c in counts.items()),
        key=lambda g: (-g.count, g.group),
    )
    return MemberDetail(
        member=member,
        score=score,
        metrics=metrics,
        tier=tier_for_total(score.total_score) if score else tier_for_total(0),
        groups=groups,
        heatmap=heatmap_build(active_dates=metrics.active_dates if metrics else [], today=today),
        claims=list(TierBadgeClaim.objects.filter(member=member).order_by("tier")),
        tier_changes=list(TierChange.objects.filter(member=member).order_by("-changed_at")[:50]),
    )


def award_history_for_member_staff(
    *, member: User, limit: int = MEMBER_HISTORY_LIMIT
) -> list[Award]:
    """The member's latest awards, revoked ones included, with granter and revocation."""
    return list(
        Award.objects.filter(recipient=member)
        .select_related("recipient", "granted_by", "revocation", "revocation__revoked_by")
        .order_by("-granted_at", "-id")[:limit]
    )


def award_count_for_member(*, member: User) -> int:
    """How many awards the member has received (revoked included)."""
    return Award.objects.filter(recipient=member).count()


def tier_name(ordinal: int) -> str:
    """The tier's name, or ``"tier N"`` for an ordinal no longer configured."""
    try:
        return tier_get(ordinal).name
    except KeyError:
        return f"tier {ordinal}"


def usernames_to_members(*, usernames: Iterable[str]) -> dict[str, User]:
    """Members keyed by the username as given, in one query (two when some need case folding).

    An exact match wins; a name typed in another case matches when only one member has it
    in any case (Django usernames are case-sensitive, so "Bob" and "bob" may both exist).
    Names with no member are absent from the result.
    """
    names = {u for u in usernames if u}
    found: dict[str, User] = {u.username: u for u in User.objects.filter(username__in=names)}
    missing = {n for n in names if n not in found}
    if missing:
        candidates: dict[str, list] = {}
        lowered = {n.lower() for n in missing}
        for user in User.objects.annotate(lname=Lower("username")).filter(lname__in=lowered):
            candidates.setdefault(user.lname, []).append(user)
        for name in missing:
            users = candidates.get(name.lower(), [])
            if len(users) == 1:
                found[name] = users[0]
    return found


def member_by_username(*, username: str) -> User | None:
    """The member with this username (exact, else the only case-insensitive match), or None."""
    return usernames_to_members(usernames=[username]).get(username)
