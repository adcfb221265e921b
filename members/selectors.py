"""Reads behind the member-facing pages: leaderboards (keyset-paginated) and profiles.

Leaderboard order is (value descending, username ascending) where value is the total score
("all") or the gain in the window ("7d", "30d"). Usernames are unique, so the order is total
and a cursor — the (value, username) of a row — names an exact place in it.
"""

import base64
import binascii
import json
from array import array
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate

from awards.models import Award
from members import charts
from scoring.models import ScoreHistory, TierBadgeClaim, UserScore
from scoring.tiers import Tier, tier_get

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

WINDOWS: dict[str, timedelta | None] = {
    "all": None,
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# How long a walk through a window board keeps the start it began with. Older (or
# hand-made) cursors are measured from the current start instead, so a crafted cursor
# cannot make the server compute a board for an arbitrary moment.
WALK_PIN = timedelta(hours=1)
AWARD_PAGE_SIZE = 20
# The largest OFFSET a page may need: beyond it no table has rows, and beyond 2**63 - 1 the
# database refuses the number.
MAX_OFFSET = 2**62
# A cursor's numbers are database values (bigint) and its username a username.
_BIGINT = range(-(2**63), 2**63)
USERNAME_MAX = 150
CHART_DAYS = 365


class InvalidCursor(ValueError):
    """A leaderboard cursor that cannot be decoded or belongs to another window."""


# --- Leaderboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A place in a board: the rows after (or before) the row (value, username).

    ``start`` pins a window board's start time, so every page of one walk measures gains
    from the same baseline even as the clock moves (for up to ``WALK_PIN``).

    ``ahead`` and ``above`` place the cursor's own row: how many rows precede it, and how
    many of those have a strictly higher value (its competition rank is ``above + 1``).
    Carried so the next page's ranks follow without counting the rows ahead of it; a
    cursor without them (hand-made, or from an older link) is ranked by a COUNT instead.
    """

    window: str
    value: int
    username: str
    direction: str  # "after" or "before"
    start: datetime | None = None
    ahead: int | None = None
    above: int | None = None

    def encode(self) -> str:
        """The opaque, URL-safe text form used in ``?cursor=``."""
        payload = [
            self.window,
            self.value,
            self.username,
            "a" if self.direction == "after" else "b",
            self.start.timestamp() if self.start else None,
        ]
        if self.ahead is not None and self.above is not None:
            payload += [self.ahead, self.above]
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, window: str) -> "Cursor":
        """Parse ``text``; raise ``InvalidCursor`` unless it is a cursor of ``window``."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            win, value, username, direction, start, *place = json.loads(raw)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidCursor("not a leaderboard cursor") from exc
        ahead, above = place if len(place) == 2 else (None, None)
        if win != window:
            raise InvalidCursor("the cursor belongs to another window")
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value not in _BIGINT
            or not isinstance(username, str)
            or len(username) > USERNAME_MAX
            or "\x00" in username
            or direction not in ("a", "b")
            or (start is None) != (WINDOWS[window] is None)
            or (start is not None and not isinstance(start, int | float))
            or len(place) not in (0, 2)
            or (
                place
                and not (
                    all(isinstance(n, int) and not isinstance(n, bool) for n in place)
                    and 0 <= place[1] <= place[0] < 2**63  # (ahead, above)
                )
            )
        ):
            raise InvalidCursor("not a leaderboard cursor")
        try:
            start_at = datetime.fromtimestamp(start, tz=UTC) if start is not None else None
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidCursor("not a leaderboard cursor") from exc
        return cls(
            window=window,
            value=value,
            username=username,
            direction="after" if direction == "a" else "before",
            start=start_at,
            ahead=ahead,
            above=above,
        )


@dataclass(frozen=True)
class BoardEntry:
    """One row of a board. ``gain`` is None on the all-time board."""

    rank: int
    position: int
    username: str
    total_score: int
    gain: int | None
    tier: Tier


@dataclass(frozen=True)
class BoardPage:
    """A page of a board with cursors to its neighbours (None when there is none)."""

    window: str
    window_start: datetime | None
    entries: list[BoardEntry]
    next_cursor: str | None
    prev_cursor: str | None
    # The page holding the member asked about (see ``leaderboard_cursor_for_member``).
    member_cursor: str | None = None


def leaderboard_window_start(*, window: str, now: datetime) -> datetime | None:
    """The start of ``window`` measured back from ``now``, to the whole second; None for
    the all-time board. Whole seconds keep cursors exact and let one cached window board
    serve every request in the same second.
    """
    span = WINDOWS[window]
    return None if span is None else (now - span).replace(microsecond=0)


def _board_members() -> QuerySet[UserScore]:
    """Every UserScore on the boards: all of them, or all but staff accounts.

    Staff are excluded with NOT EXISTS rather than a join on auth_user, so PostgreSQL hashes
    the few staff ids (an anti-join) instead of every member.
    """
    rows = UserScore.objects.all()
    if settings.LEADERBOARD_EXCLUDE_STAFF:
        staff = User.objects.filter(pk=OuterRef("member_id"), is_staff=True)
        rows = rows.filter(~Exists(staff))
    return rows


class BoardValue(TypedDict):
    """The annotation ``leaderboard_queryset`` adds to each row."""

    board_value: int


def leaderboard_queryset(
    *, start: datetime | None
) -> "QuerySet[WithAnnotations[UserScore, BoardValue]]":
    """Board rows annotated with ``board_value``: the total, or the gain since ``start``.

    The gain is the total now minus the last ScoreHistory total at or before ``start``,
    however old that row is; a member with no row that old started from 0. The baseline is
    one correlated subquery (a probe of the (member, recorded_at) index per member), which
    PostgreSQL and SQLite both run set-based in one statement.
    """
    rows = _board_members()
    if start is None:
        return rows.annotate(board_value=F("total_score"))
    baseline = (
        ScoreHistory.objects.filter(member=OuterRef("member"), recorded_at__lte=start)
        .order_by("-recorded_at")
        .values("total_score")[:1]
    )
    return rows.annotate(
        board_value=F("total_score")
        - Coalesce(Subquery(baseline), Value(0), output_field=BigIntegerField())
    )


def _ahead_of(value: int, username: str) -> Q:
    """Rows ordered before (value, username).

    Written as ``value >= v AND (value > v OR username < u)`` rather than a plain OR so the
    first term bounds an index range scan on (-total_score, username): the database starts
    at the cursor instead of filtering every row from the top.
    """
    return Q(board_value__gte=value) & (Q(board_value__gt=value) | Q(username__lt=username))


def _behind(value: int, username: str) -> Q:
    """Rows ordered after (value, username); the mirror image of ``_ahead_of``."""
    return Q(board_value__lte=value) & (Q(board_value__lt=value) | Q(username__gt=username))


def _tier(ordinal: int) -> Tier:
    try:
        return tier_get(ordinal)
    except KeyError:
        # A tier table shortened after scores were computed: show the ordinal as it is.
        return Tier(ordinal=ordinal, name=f"Tier {ordinal}", floor=0)


# A board row as fetched: (value, username, total_score, tier ordinal).
Row = tuple[int, str, int, int]


@dataclass(frozen=True)
class WindowBoard:
    """A whole window board in board order, as parallel columns (compact to cache)."""

    values: array
    usernames: list[str]
    totals: array
    tiers: array

    def __len__(self) -> int:
        return len(self.usernames)

    def row(self, index: int) -> Row:
        """The row at ``index`` (0 = top)."""
        return (
            self.values[index],
            self.usernames[index],
            self.totals[index],
            self.tiers[index],
        )

    def locate(self, value: int, username: str) -> int:
        """The index of the first row at or after (value, username) in board order."""
        lo, hi = 0, len(self.usernames)
        target = (-value, username)
        while lo < hi:
            mid = (lo + hi) // 2
            if (-self.values[mid], self.usernames[mid]) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def first_with_value(self, value: int) -> int:
        """The index of the first row whose value is ``value`` or lower (the count above)."""
        return self.locate(value, "")

    def dump(self) -> tuple[bytes, str, bytes, bytes]:
        """The cacheable form: packed integers and NUL-separated usernames (PostgreSQL text
        cannot hold NUL, so no username contains one)."""
        return (
            self.values.tobytes(),
            "\x00".join(self.usernames),
            self.totals.tobytes(),
            self.tiers.tobytes(),
        )

    @classmethod
    def load(cls, packed: tuple[bytes, str, bytes, bytes]) -> "WindowBoard":
        """Rebuild a board from ``dump()``."""
        values, names, totals, tiers = array("q"), packed[1], array("q"), array("H")
        values.frombytes(packed[0])
        totals.frombytes(packed[2])
        tiers.frombytes(packed[3])
        return cls(values, names.split("\x00") if names else [], totals, tiers)


def _window_fingerprint() -> tuple:
    """What the window boards depend on, cheaply: the newest ScoreHistory id (an index
    lookup) and the count, sum and newest ``computed_at`` of UserScore. Any score change
    moves one of them, so a cached board is never older than the latest change.
    """
    history = ScoreHistory.objects.aggregate(last=Max("id"))
    scores = UserScore.objects.aggregate(
        n=Count("pk"), total=Coalesce(Sum("total_score"), 0), latest=Max("computed_at")
    )
    latest = scores["latest"].timestamp() if scores["latest"] else None
    return (history["last"], scores["n"], scores["total"], latest)


def leaderboard_window_board(*, window: str, start: datetime) -> WindowBoard:
    """The whole ``window`` board measured from ``start``, in board order.

    Computed by one set-based query (``leaderboard_queryset``) and cached for
    ``LEADERBOARD_WINDOW_CACHE_S`` under a key holding ``start`` and a fingerprint of the
    scores, so every page of a walk and every "where am I" reuse it until a score changes.
    """
    parts = (
        window,
        int(start.timestamp()),
        int(bool(settings.LEADERBOARD_EXCLUDE_STAFF)),
        *_window_fingerprint(),
    )
    key = "members:window-board:" + ":".join(str(part) for part in parts)
    packed = cache.get(key)
    if packed is not None:
        return WindowBoard.load(packed)
    values, names, totals, tiers = array("q"), [], array("q"), array("H")
    rows = (
        leaderboard_queryset(start=start)
        .order_by("-board_value", "username")
        .values_list("board_value", "username", "total_score", "tier")
    )
    for value, name, total, tier in rows.iterator(chunk_size=10_000):
        values.append(value)
        names.append(name)
        totals.append(total)
        tiers.append(tier)
    board = WindowBoard(values, names, totals, tiers)
    cache.set(key, board.dump(), timeout=settings.LEADERBOARD_WINDOW_CACHE_S)
    return board


def _entries(fetched: list[Row], *, ahead: int, above: int, window: bool) -> list[BoardEntry]:
    """Board entries for consecutive rows, the first having ``ahead`` rows before it and
    ``above`` rows with a strictly higher value (its competition rank is ``above + 1``)."""
    entries: list[BoardEntry] = []
    if not fetched:
        return entries
    rank = above + 1
    previous_value = fetched[0][0]
    for index, (value, username, total, tier) in enumerate(fetched):
        position = ahead + index + 1
        if value != previous_value:
            rank = position
            previous_value = value
        entries.append(
            BoardEntry(
                rank=rank,
                position=position,
                username=username,
                total_score=total,
                gain=value if window else None,
                tier=_tier(tier),
            )
        )
    return entries


def _all_time_rows(cursor: Cursor | None, size: int) -> tuple[list[Row], int, int, bool]:
    """A page of the all-time board straight from the (-total_score, username) index.

    Returns (rows, rows ahead, rows above the first, has_next). One query for the rows. The
    rank comes from the cursor's place when it carries one (a page after it continues from
    the cursor's row; a page before it, read upwards with one row to spare, can tell where
    its top value begins unless a tie runs past that row); otherwise, and in that case, one
    COUNT of the rows ahead.
    """
    board = leaderboard_queryset(start=None)
    columns = ("board_value", "username", "total_score", "tier")
    if cursor is None or cursor.direction == "after":
        rows = board if cursor is None else board.filter(_behind(cursor.value, cursor.username))
        fetched = list(rows.order_by("-board_value", "username").values_list(*columns)[: size + 1])
        has_next = len(fetched) > size
        fetched = fetched[:size]
        if fetched and cursor is not None and cursor.ahead is not None and cursor.above is not None:
            ahead = cursor.ahead + 1
            above = cursor.above if fetched[0][0] == cursor.value else ahead
            return fetched, ahead, above, has_next
    else:
        rows = board.filter(_ahead_of(cursor.value, cursor.username))
        fetched = list(rows.order_by("board_value", "-username").values_list(*columns)[: size + 1])
        spare = fetched[size] if len(fetched) > size else None
        fetched = fetched[:size]
        fetched.reverse()
        has_next = True
        if fetched and cursor.ahead is not None and cursor.above is not None:
            ahead = max(cursor.ahead - len(fetched), 0)
            top = fetched[0][0]
            if top == cursor.value:
                return fetched, ahead, cursor.above, has_next
            if ahead == 0:
                return fetched, 0, 0, has_next
            if spare is not None and spare[0] != top:
                return fetched, ahead, ahead, has_next
    if not fetched or cursor is None:
        return fetched, 0, 0, has_next
    first_value, first_username = fetched[0][0], fetched[0][1]
    counts = board.filter(_ahead_of(first_value, first_username)).aggregate(
        ahead=Count("pk"), above=Count("pk", filter=Q(board_value__gt=first_value))
    )
    return fetched, counts["ahead"], counts["above"], has_next


def _window_rows(
    board: WindowBoard, cursor: Cursor | None, size: int
) -> tuple[list[Row], int, int, bool]:
    """A page of a cached window board; same return shape as ``_all_time_rows``."""
    if cursor is None:
        begin = 0
        end = min(size, len(board))
    elif cursor.direction == "after":
        begin = board.locate(cursor.value, cursor.username)
        if begin < len(board) and board.row(begin)[:2] == (cursor.value, cursor.username):
            begin += 1  # the cursor's own row ends the previous page
        end = min(begin + size, len(board))
    else:
        end = board.locate(cursor.value, cursor.username)
        begin = max(end - size, 0)
    fetched = [board.row(i) for i in range(begin, end)]
    above = board.first_with_value(fetched[0][0]) if fetched else 0
    return fetched, begin, above, end < len(board)


def leaderboard_page(
    *,
    window: str,
    cursor: Cursor | None = None,
    now: datetime,
    page_size: int | None = None,
    member: User | None = None,
) -> BoardPage:
    """One page of the ``window`` board, after or before ``cursor`` (the top without one).

    Ranks are competition ranks (equal values share a rank; "1, 2, 2, 4"); within equal
    values rows are ordered by username. The all-time board reads the (-total_score,
    username) index from the cursor on (one query; the rank comes with the cursor, or from
    one COUNT for a cursor that does not carry it), so any depth is as fast as the first
    page; window boards page through a cached whole-board
    computation (``leaderboard_window_board``). Every row appears on exactly one page of a
    walk; a member whose value changes mid-walk may move across the cursor (and so be seen
    twice or not at all), which is inherent to any live board.

    With ``member``, ``member_cursor`` is the cursor of the page holding them on this same
    board (same window start, same cached window board).
    """
    size = page_size or settings.LEADERBOARD_PAGE_SIZE
    board: WindowBoard | None = None
    start = leaderboard_window_start(window=window, now=now)
    if (
        start is not None
        and cursor is not None
        and cursor.start is not None
        and start - WALK_PIN <= cursor.start <= start
    ):
        start = cursor.start
    if start is None:
        fetched, ahead, above, has_next = _all_time_rows(cursor, size)
    else:
        board = leaderboard_window_board(window=window, start=start)
        fetched, ahead, above, has_next = _window_rows(board, cursor, size)
    entries = _entries(fetched, ahead=ahead, above=above, window=start is not None)
    member_cursor = None
    if member is not None:
        member_cursor = leaderboard_cursor_for_member(
            member=member, window=window, now=now, page_size=size, start=start, board=board
        )

    def cursor_at(entry: BoardEntry, direction: str) -> str:
        value = entry.total_score if entry.gain is None else entry.gain
        return Cursor(
            window,
            value,
            entry.username,
            direction,
            start,
            ahead=entry.position - 1,
            above=entry.rank - 1,
        ).encode()

    return BoardPage(
        window=window,
        window_start=start,
        entries=entries,
        next_cursor=cursor_at(entries[-1], "after") if entries and has_next else None,
        prev_cursor=cursor_at(entries[0], "before") if entries and ahead > 0 else None,
        member_cursor=member_cursor,
    )


def leaderboard_cursor_for_member(
    *,
    member: User,
    window: str,
    now: datetime,
    page_size: int | None = None,
    start: datetime | None = None,
    board: WindowBoard | None = None,
) -> str | None:
    """The cursor of the board page holding ``member`` ("" for the first page).

    Pages are aligned to multiples of the page size from the top, so "where am I" lands on
    the same page a reader paging down from the top would reach. None when the member is
    not on the board (no score yet, or a staff account excluded by the setting). On the
    all-time board this is three queries whatever the member's depth: their row, a COUNT of
    rows ahead, and a backwards index scan of at most one page to the row above the page
    (and one row beyond it, so the cursor carries that row's rank and the page it opens
    counts nothing; only a tie running above that row costs one more COUNT).
    A window board is measured from ``start`` (default: the window's current start); a
    ``board`` already loaded for that start may be passed in to reuse it.
    """
    size = page_size or settings.LEADERBOARD_PAGE_SIZE
    if start is None:
        start = leaderboard_window_start(window=window, now=now)
    if start is not None:
        if board is None:
            board = leaderboard_window_board(window=window, start=start)
        username = member.get_username()
        position = next((i for i, n in enumerate(board.usernames) if n == username), None)
        if position is None:
            return None
        page_start = position // size * size
        if page_start == 0:
            return ""
        value, anchor_name = board.values[page_start - 1], board.usernames[page_start - 1]
        above = board.first_with_value(value)
        return Cursor(
            window, value, anchor_name, "after", start, ahead=page_start - 1, above=above
        ).encode()

    rows = leaderboard_queryset(start=None)
    mine = rows.filter(member=member).values_list("board_value", "username").first()
    if mine is None:
        return None
    ahead = rows.filter(_ahead_of(*mine))
    counts = ahead.aggregate(
        position=Count("pk"), above=Count("pk", filter=Q(board_value__gt=mine[0]))
    )
    position = counts["position"]  # 0-based index of the member on the board
    page_start = position // size * size
    if page_start == 0:
        return ""
    steps_up = position - page_start + 1  # rows from the member up to the row above the page
    # The rows from the member up to the anchor (the row above the page), plus one more so
    # the anchor's rank can travel in the cursor and the page it opens needs no COUNT.
    upward = list(
        ahead.order_by("board_value", "-username").values_list("board_value", "username")[
            : steps_up + 1
        ]
    )
    if len(upward) < steps_up:  # pragma: no cover - the board moved between the two queries
        return ""
    anchor = upward[steps_up - 1]
    beyond = upward[steps_up] if len(upward) > steps_up else None
    if anchor[0] == mine[0]:
        anchor_above = counts["above"]  # same value, same rank as the member
    elif beyond is None:
        anchor_above = 0  # the anchor is the top row
    elif beyond[0] != anchor[0]:
        anchor_above = page_start - 1  # the anchor's value starts at the anchor
    else:
        # A tie runs above the anchor: count where its value starts (rare, one COUNT).
        anchor_above = rows.filter(board_value__gt=anchor[0]).count()
    return Cursor(
        window, anchor[0], anchor[1], "after", None, ahead=page_start - 1, above=anchor_above
    ).encode()


# --- Profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breakdown:
    """A member's total and its parts; ``activity + awards == total`` always."""

    total: int
    activity: int
    awards: int
    tier: Tier
    streak_days: int
    active_days: int
    computed_at: datetime | None


@dataclass(frozen=True)
class AwardRow:
    """An award as a given viewer may see it: ``reason`` and ``category`` are None when
    hidden (a private award seen by anyone but its recipient). Never carries the staff note.
    """

    id: int
    points: int
    reason: str | None
    category: str | None
    category_label: str | None
    public: bool
    granted_at: datetime
    revoked: bool
    revoked_at: datetime | None
    revocation_reason: str | None


@dataclass(frozen=True)
class AwardPage:
    """One page of a member's award history, newest first."""

    rows: list[AwardRow]
    page: int
    has_next: bool


def member_get_for_profile(*, username: str) -> User | None:
    """The active member named ``username`` with score and metrics joined, or None."""
    return (
        User.objects.select_related("score", "metrics")
        .filter(username=username, is_active=True)
        .first()
    )


def score_breakdown_for_member(*, member: User) -> Breakdown:
    """The member's total split into activity and awards, both from their UserScore row.

    Both parts come from the same row the total was written to, so they sum to it exactly;
    a member with no score row yet shows zeros in the lowest tier.
    """
    score = getattr(member, "score", None)
    if score is None:
        return Breakdown(0, 0, 0, _tier(1), 0, 0, None)
    return Breakdown(
        total=score.total_score,
        activity=score.activity_score,
        awards=score.award_points,
        tier=_tier(score.tier),
        streak_days=score.streak_days,
        active_days=score.active_days,
        computed_at=score.computed_at,
    )


def award_counts_for_member(*, member: User) -> dict[str, int]:
    """How many awards the member holds, how many were revoked, and the unrevoked sum."""
    return Award.objects.filter(recipient=member).aggregate(
        total=Count("pk"),
        revoked=Count("pk", filter=Q(revocation__isnull=False)),
        counted_points=Coalesce(Sum("points", filter=Q(revocation__isnull=True)), 0),
    )


def award_history_for_member(
    *,
    member: User,
    viewer: User | AnonymousUser | None,
    page: int = 1,
    page_size: int = AWARD_PAGE_SIZE,
) -> AwardPage:
    """One page of ``member``'s awards, newest first, as ``viewer`` may see them.

    Revoked awards are included and flagged (the page strikes them through); their points no
    longer count. A private award's reason and category, and any revocation reason, are shown
    only to the recipient themself. The staff note is never loaded.
    """
    is_owner = bool(viewer is not None and viewer.is_authenticated and viewer.pk == member.pk)
    offset = (page - 1) * page_size
    if offset > MAX_OFFSET:
        # Past any table's end, and past what SQL's OFFSET accepts (a 64-bit integer).
        return AwardPage(rows=[], page=page, has_next=False)
    awards = list(
        Award.objects.filter(recipient=member)
        .select_related("revocation")
        .only(
            "id",
            "points",
            "reason",
            "category",
            "public",
            "granted_at",
            "revocation__revoked_at",
            "revocation__reason",
        )
        .order_by("-granted_at", "-id")[offset : offset + page_size + 1]
    )
    rows = []
    for award in awards[:page_size]:
        revocation = getattr(award, "revocation", None)
        visible = award.public or is_owner
        rows.append(
            AwardRow(
                id=award.pk,
                points=award.points,
                reason=award.reason if visible else None,
                category=award.category if visible else None,
                category_label=award.get_category_display() if visible else None,
                public=award.public,
                granted_at=award.granted_at,
                revoked=revocation is not None,
                revoked_at=revocation.revoked_at if revocation else None,
                revocation_reason=revocation.reason if revocation and is_owner else None,
            )
        )
    return AwardPage(rows=rows, page=page, has_next=len(awards) > page_size)


def tier_claims_for_member(*, member: User) -> list[tuple[Tier, datetime, int]]:
    """The tier badges the member has claimed, lowest tier first: (tier, claimed at, total)."""
    claims = TierBadgeClaim.objects.filter(member=member).order_by("tier")
    return [
        (_tier(c.tier), c.claimed_at, c.total_at_claim)
        for c in claims.only("tier", "claimed_at", "total_at_claim")
    ]


def score_chart_for_member(*, member: User, current_total: int, now: datetime) -> charts.ScoreChart:
    """The score-over-time chart for the last ``CHART_DAYS`` days.

    Two queries however long the history: the baseline (the last row at or before the
    chart's start) and the last row of each day inside the range, so the chart has at most
    one step per day.
    """
    start = now - timedelta(days=CHART_DAYS)
    history = ScoreHistory.objects.filter(member=member)
    baseline = (
        history.filter(recorded_at__lte=start)
        .order_by("-recorded_at", "-id")
        .values_list("total_score", flat=True)
        .first()
    )
    day_ends = (
        history.filter(recorded_at__gt=start)
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(last=Max("recorded_at"))
        .values("last")
    )
    rows = list(
        history.filter(recorded_at__in=Subquery(day_ends))
        .order_by("recorded_at", "id")
        .values_list("recorded_at", "total_score")
    )
    return charts.score_chart(
        baseline=baseline, rows=rows, current_total=current_total, start=start, end=now
    )


def activity_heatmap_for_member(*, member: User, today: date) -> charts.Heatmap:
    """The active-day heatmap for the year ending ``today`` from MemberMetrics.active_dates."""
    metrics = getattr(member, "metrics", None)
    dates = metrics.active_dates if metrics is not None else []
    return charts.active_day_heatmap(active_dates=dates, today=today)
