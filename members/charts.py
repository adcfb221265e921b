"""Geometry for the profile's server-rendered SVG: the score chart and the active-day heatmap.

Pure functions, so they can be read and tested alone. They return plain numbers and strings
(``heatmap_rects`` a ready, safe SVG fragment); the templates draw them with SVG presentation
attributes and CSS classes (the content security policy forbids inline ``style``).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from django.utils.safestring import SafeString, mark_safe

CHART_WIDTH = 720
CHART_HEIGHT = 200
# Room for the y-axis labels on the left and the date labels underneath.
CHART_PAD_LEFT = 64
CHART_PAD_RIGHT = 12
CHART_PAD_TOP = 12
CHART_PAD_BOTTOM = 28

HEATMAP_CELL = 11
HEATMAP_GAP = 2
HEATMAP_TOP = 16  # month labels
HEATMAP_LEFT = 28  # weekday labels
HEATMAP_DAYS = 365


@dataclass(frozen=True)
class ScoreChart:
    """A step chart of the total score: ``points`` is the SVG ``points`` attribute."""

    width: int
    height: int
    points: str
    y_max: int
    y_ticks: list[tuple[float, int]]  # (y coordinate, value)
    x_ticks: list[tuple[float, str]]  # (x coordinate, label)
    start_total: int
    end_total: int
    start: datetime
    end: datetime
    empty: bool
    # The first and last recorded points the chart draws (the baseline counts as recorded
    # at ``start``: it is the total that was in force then). Labels name these, never a
    # value at a moment nobody recorded one.
    first_at: datetime | None = None
    first_total: int | None = None
    last_at: datetime | None = None
    last_total: int | None = None
    # One recorded point and no baseline: drawn as a dot at (dot_x, dot_y), since a line
    # from the point to "now" can be a few pixels long or nothing at all.
    single: bool = False
    dot_x: float = 0.0
    dot_y: float = 0.0


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 10)."""
    if value <= 10:
        return 10
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def score_chart(
    *,
    baseline: int | None,
    rows: Sequence[tuple[datetime, int]],
    current_total: int,
    start: datetime,
    end: datetime,
) -> ScoreChart:
    """Lay out a step chart of the total score from ``start`` to ``end``.

    ``baseline`` is the total in force at ``start`` (the last history row at or before it),
    or None when the member had no score yet; ``rows`` are (time, total) pairs after
    ``start`` in time order. The line holds each total until the next change (a score does
    not drift between recorded changes) and ends at ``current_total`` at ``end``.
    """
    plot_w = CHART_WIDTH - CHART_PAD_LEFT - CHART_PAD_RIGHT
    plot_h = CHART_HEIGHT - CHART_PAD_TOP - CHART_PAD_BOTTOM
    span = (end - start).total_seconds() or 1.0

    totals = [t for _, t in rows] + [current_total] + ([baseline] if baseline is not None else [])
    y_max = _nice_ceiling(max(totals))

    def x_of(moment: datetime) -> float:
        fraction = min(max((moment - start).total_seconds() / span, 0.0), 1.0)
        return round(CHART_PAD_LEFT + fraction * plot_w, 1)

    def y_of(total: int) -> float:
        return round(CHART_PAD_TOP + plot_h - (max(total, 0) / y_max) * plot_h, 1)

    steps: list[tuple[datetime, int]] = []
    if baseline is not None:
        steps.append((start, baseline))
    steps.extend(rows)
    empty = not steps
    coords: list[tuple[float, float]] = []
    previous: int | None = None
    for moment, total in steps:
        x = x_of(moment)
        if previous is not None:
            coords.append((x, y_of(previous)))  # hold the old total until this change
        coords.append((x, y_of(total)))
        previous = total
    if previous is not None:
        coords.append((x_of(end), y_of(previous)))
        if previous != current_total:
            coords.append((x_of(end), y_of(current_total)))
    points = " ".join(f"{x:g},{y:g}" for x, y in coords)

    y_ticks = [(y_of(v), v) for v in (0, y_max // 2, y_max)]
    x_ticks = []
    for fraction in (0.0, 0.5, 1.0):
        moment = start + timedelta(seconds=span * fraction)
        x_ticks.append((round(CHART_PAD_LEFT + fraction * plot_w, 1), f"{moment:%Y-%m-%d}"))
    start_total = baseline if baseline is not None else (rows[0][1] if rows else current_total)
    first = steps[0] if steps else (None, None)
    last = steps[-1] if steps else (None, None)
    single = baseline is None and len(rows) == 1
    return ScoreChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        points=points,
        y_max=y_max,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        start_total=start_total,
        end_total=current_total,
        start=start,
        end=end,
        empty=empty,
        first_at=first[0],
        first_total=first[1],
        last_at=last[0],
        last_total=last[1],
        single=single,
        dot_x=x_of(rows[0][0]) if single else 0.0,
        dot_y=y_of(rows[0][1]) if single else 0.0,
    )


@dataclass(frozen=True)
class HeatmapCell:
    """One day of the heatmap."""

    x: int
    y: int
    day: date
    active: bool


@dataclass(frozen=True)
class Heatmap:
    """Cells for the ``HEATMAP_DAYS`` days ending ``today``, one column per Monday-first week."""

    width: int
    height: int
    cell: int
    cells: list[HeatmapCell]
    months: list[tuple[int, str]]  # (x, label) where a month starts
    weekdays: list[tuple[int, str]]  # (y, label)
    active_count: int
    first_day: date
    last_day: date


def active_day_heatmap(*, active_dates: Iterable[str | date], today: date) -> Heatmap:
    """Lay out the active-day heatmap for the ``HEATMAP_DAYS`` days ending ``today``.

    ``active_dates`` are ISO strings or dates (as stored in MemberMetrics.active_dates);
    dates outside the range and unparsable strings are ignored.
    """
    first_day = today - timedelta(days=HEATMAP_DAYS - 1)
    active: set[date] = set()
    for value in active_dates:
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            continue
        if first_day <= day <= today:
            active.add(day)

    pitch = HEATMAP_CELL + HEATMAP_GAP
    week_zero = first_day - timedelta(days=first_day.weekday())  # Monday of the first week
    cells: list[HeatmapCell] = []
    months: list[tuple[int, str]] = []
    for offset in range(HEATMAP_DAYS):
        day = first_day + timedelta(days=offset)
        col = (day - week_zero).days // 7
        x = HEATMAP_LEFT + col * pitch
        cells.append(
            HeatmapCell(x=x, y=HEATMAP_TOP + day.weekday() * pitch, day=day, active=day in active)
        )
        # Label each month at its first column; the partial month the range starts in only
        # when enough of it is shown for the label not to run into the next one.
        if day.day == 1 or (offset == 0 and day.day <= 14):
            months.append((x, f"{day:%b}"))
    columns = (today - week_zero).days // 7 + 1
    weekdays = [(HEATMAP_TOP + row * pitch + HEATMAP_CELL - 2, name) for row, name in _WEEKDAYS]
    return Heatmap(
        width=HEATMAP_LEFT + columns * pitch,
        height=HEATMAP_TOP + 7 * pitch,
        cell=HEATMAP_CELL,
        cells=cells,
        months=months,
        weekdays=weekdays,
        active_count=len(active),
        first_day=first_day,
        last_day=today,
    )


_WEEKDAYS = [(0, "Mon"), (2, "Wed"), (4, "Fri")]


class _Cell(Protocol):
    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def day(self) -> date: ...
    @property
    def active(self) -> bool: ...


def heatmap_rects(cells: Iterable[_Cell], *, size: int, day_format: str = "%Y-%m-%d") -> SafeString:
    """A heatmap's day squares as SVG ``<rect>``s, each with a ``<title>`` tooltip, in one pass.

    Shared by the profile and the staff member page. Built in Python rather than with a
    template loop: a year is ~371 cells, and the loop (five lookups and a date filter per
    cell) was most of the profile's render time. Nothing is escaped because nothing needs
    it: every value is an integer, a fixed class name or a date formatted with
    ``day_format`` (digits and month/day names); ``int()`` enforces the numbers.
    """
    size = int(size)
    return mark_safe(  # noqa: S308 - integers, fixed strings and dates only
        "".join(
            f'<rect x="{int(cell.x)}" y="{int(cell.y)}" width="{size}" height="{size}" rx="2" '
            + (
                f'class="hm hm-on"><title>{cell.day.strftime(day_format)}: active</title></rect>'
                if cell.active
                else f'class="hm"><title>{cell.day.strftime(day_format)}</title></rect>'
            )
            for cell in cells
        )
    )
