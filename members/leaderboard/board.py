"""Boards: who is on a leaderboard, in board order; window boards cached whole."""

from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from members.leaderboard.cursor import WINDOWS
from scoring.models import ScoreHistory, UserScore
from scoring.tiers import Tier, tier_get

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

User = get_user_model()


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


def tier_or_placeholder(ordinal: int) -> Tier:
    """The configured tier ``ordinal``, or a placeholder named after it when the tier table
    no longer has it."""
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
