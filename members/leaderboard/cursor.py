"""Leaderboard cursors: a place in a board, as opaque text in a URL."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WINDOWS: dict[str, timedelta | None] = {
    "all": None,
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# How long a walk through a window board keeps the start it began with. Older (or
# hand-made) cursors are measured from the current start instead, so a crafted cursor
# cannot make the server compute a board for an arbitrary moment.
WALK_PIN = timedelta(hours=1)
# A cursor's numbers are database values (bigint) and its username a username.
_BIGINT = range(-(2**63), 2**63)
USERNAME_MAX = 150


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
