"""The leaderboards (keyset-paginated): all-time and 7/30-day windows.

Leaderboard order is (value descending, username ascending) where value is the total score
("all") or the gain in the window ("7d", "30d"). Usernames are unique, so the order is total
and a cursor — the (value, username) of a row — names an exact place in it.

``cursor`` reads and writes cursors, ``board`` builds boards (window boards cached),
``pages`` cuts a board into pages.
"""

from members.leaderboard.board import (
    BoardEntry,
    BoardPage,
    leaderboard_queryset,
    leaderboard_window_board,
    leaderboard_window_start,
)
from members.leaderboard.cursor import WINDOWS, Cursor, InvalidCursor
from members.leaderboard.pages import leaderboard_cursor_for_member, leaderboard_page

__all__ = [
    "WINDOWS",
    "BoardEntry",
    "BoardPage",
    "Cursor",
    "InvalidCursor",
    "leaderboard_cursor_for_member",
    "leaderboard_page",
    "leaderboard_queryset",
    "leaderboard_window_board",
    "leaderboard_window_start",
]
