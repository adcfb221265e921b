"""Pages of a board: a page from a cursor, and the page holding a given member."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    Count,
    Q,
    QuerySet,
)

from members.leaderboard.board import (
    BoardEntry,
    BoardPage,
    Row,
    WindowBoard,
    leaderboard_queryset,
    leaderboard_window_board,
    leaderboard_window_start,
    tier_or_placeholder,
)
from members.leaderboard.cursor import WALK_PIN, Cursor


def _ahead_of(value: int, username: str) -> Q:
    """Rows ordered before (value, username).

    Written as ``value >= v AND (value > v OR username < u)`` rather than a plain OR so the
    first term bounds an index range scan on (-total_score, username): the database starts
    at the cursor instead of filtering every row from the top.
    """
    return Q(board_value__gte=value) & (Q(board_value__gt=value) | Q(username__lt=username))


def _keyset_rows(board: QuerySet, cursor: Cursor, columns: tuple[str, ...], limit: int) -> list:
    """Up to ``limit`` rows next to ``cursor`` in its direction (upwards, nearest first,
    for "before"), in one query.

    On PostgreSQL a ``UNION ALL`` of two index range scans: the rest of the cursor's own
    value (``value = v AND username > u``: both columns bound the scan) and the values
    beyond it, each limited. The single ``_ahead_of``-style filter starts its scan at the
    first row of the cursor's value and discards every row of the tie before the cursor;
    low scores are shared by thousands of members at full size, so a deep page read and
    dropped ~2,000 index entries (7 ms) to return 50. SQLite cannot order the parts of a
    compound statement and keeps the single filter.
    """
    value, username = cursor.value, cursor.username
    after = cursor.direction == "after"
    if not connection.features.supports_slicing_ordering_in_compound:
        order = ("-board_value", "username") if after else ("board_value", "-username")
        near = _behind(value, username) if after else _ahead_of(value, username)
        return list(board.filter(near).order_by(*order).values_list(*columns)[:limit])
    sql, compiled = _keyset_sql(board, after, columns, limit)
    params = [value if _is(p, _VALUE) else username if _is(p, _NAME) else p for p in compiled]
    with connection.cursor() as db:
        db.execute(sql, params)
        return db.fetchall()


# Stand-ins for the cursor's place while a keyset query is compiled: the SQL of each query
# shape is built by the ORM once per process and then run with the cursor's values, which
# saves ~2.5 ms of query compilation on every board page.
_VALUE, _NAME = -(2**62) + 7, "\x00cursor\x00"
_compiled: dict[tuple, tuple[str, tuple]] = {}


def _is(param: object, sentinel: object) -> bool:
    # isinstance: the compiled parameters may be the driver's int subclasses (Int8).
    return isinstance(param, type(sentinel)) and param == sentinel


def _keyset_sql(
    board: QuerySet, after: bool, columns: tuple[str, ...], limit: int
) -> tuple[str, tuple]:
    key = (connection.vendor, after, columns, limit, settings.LEADERBOARD_EXCLUDE_STAFF)
    if key not in _compiled:
        if after:
            tie = board.filter(board_value=_VALUE, username__gt=_NAME)
            beyond = board.filter(board_value__lt=_VALUE)
        else:
            tie = board.filter(board_value=_VALUE, username__lt=_NAME)
            beyond = board.filter(board_value__gt=_VALUE)
        order = ("-board_value", "username") if after else ("board_value", "-username")
        parts = [qs.order_by(*order).values_list(*columns)[:limit] for qs in (tie, beyond)]
        union = parts[0].union(parts[1], all=True).order_by(*order)[:limit]
        _compiled[key] = union.query.sql_with_params()
    return _compiled[key]


def _behind(value: int, username: str) -> Q:
    """Rows ordered after (value, username); the mirror image of ``_ahead_of``."""
    return Q(board_value__lte=value) & (Q(board_value__lt=value) | Q(username__gt=username))


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
                tier=tier_or_placeholder(tier),
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
        if cursor is None:
            fetched = list(
                board.order_by("-board_value", "username").values_list(*columns)[: size + 1]
            )
        else:
            fetched = _keyset_rows(board, cursor, columns, size + 1)
        has_next = len(fetched) > size
        fetched = fetched[:size]
        if fetched and cursor is not None and cursor.ahead is not None and cursor.above is not None:
            ahead = cursor.ahead + 1
            above = cursor.above if fetched[0][0] == cursor.value else ahead
            return fetched, ahead, above, has_next
    else:
        fetched = _keyset_rows(board, cursor, columns, size + 1)
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
