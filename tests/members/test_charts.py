"""The pure geometry behind the profile's SVG score chart and heatmap."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from members import charts

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=100)


def coords(chart):
    return [tuple(map(float, point.split(","))) for point in chart.points.split()]


def test_chart_holds_each_total_until_the_next_change():
    chart = charts.score_chart(
        baseline=100,
        rows=[(START + timedelta(days=50), 300)],
        current_total=300,
        start=START,
        end=END,
    )
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = coords(chart)
    assert x0 == charts.CHART_PAD_LEFT
    assert x3 == charts.CHART_WIDTH - charts.CHART_PAD_RIGHT
    assert x1 == x2 == (x0 + x3) / 2  # the step sits at the change, mid-way
    assert y0 == y1  # flat until the change
    assert y2 == y3 < y1  # then up (SVG y grows downwards) and flat again
    assert chart.y_max == 500
    assert chart.start_total == 100
    assert chart.end_total == 300
    assert not chart.empty


def test_chart_ends_at_the_current_total_and_scales_to_it():
    chart = charts.score_chart(
        baseline=None,
        rows=[(START + timedelta(days=10), 40)],
        current_total=1_700,
        start=START,
        end=END,
    )
    points = coords(chart)
    assert points[0][0] > charts.CHART_PAD_LEFT  # no line before the first score
    plot_height = charts.CHART_HEIGHT - charts.CHART_PAD_TOP - charts.CHART_PAD_BOTTOM
    assert chart.y_max == 2_000
    expected_y = charts.CHART_PAD_TOP + plot_height * (1 - 1_700 / 2_000)
    assert points[-1] == (charts.CHART_WIDTH - charts.CHART_PAD_RIGHT, expected_y)
    assert chart.start_total == 40


def test_chart_without_history_is_empty():
    chart = charts.score_chart(baseline=None, rows=[], current_total=0, start=START, end=END)
    assert chart.empty
    assert chart.points == ""
    assert chart.y_max == 10


def test_nice_axis_ceiling():
    assert [charts._nice_ceiling(v) for v in (0, 7, 11, 199, 200, 201, 4_999, 1_900_001)] == [
        10,
        10,
        20,
        200,
        200,
        500,
        5_000,
        2_000_000,
    ]


def test_heatmap_covers_a_year_monday_first():
    today = date(2026, 11, 24)  # a Tuesday
    heatmap = charts.active_day_heatmap(
        active_dates=["2026-11-24", "2025-11-25", "2025-11-24", "garbage", date(2026, 6, 1)],
        today=today,
    )
    assert len(heatmap.cells) == 365
    assert heatmap.first_day == date(2025, 11, 25)
    assert heatmap.active_count == 3  # 2025-11-24 is a day too old; garbage is ignored
    on = {cell.day for cell in heatmap.cells if cell.active}
    assert on == {date(2026, 11, 24), date(2025, 11, 25), date(2026, 6, 1)}
    # One row per weekday (Monday on top), one column per week, no two cells overlapping.
    assert len({(c.x, c.y) for c in heatmap.cells}) == 365
    rows = {c.day.weekday(): c.y for c in heatmap.cells}
    assert [rows[d] for d in range(7)] == sorted(rows.values())
    last = heatmap.cells[-1]
    assert last.day == today
    assert last.x + heatmap.cell <= heatmap.width
    # The range starts on 25 November: too little of it to label; then every month start.
    labels = [label for _, label in heatmap.months]
    assert labels == [
        "Dec",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
    ]
    xs = [x for x, _ in heatmap.months]
    assert all(b - a >= 4 * (charts.HEATMAP_CELL + charts.HEATMAP_GAP) for a, b in pairwise(xs))


def test_a_single_recorded_point_is_a_dot_with_its_own_date():
    at = END - timedelta(minutes=5)
    chart = charts.score_chart(
        baseline=None, rows=[(at, 1_234)], current_total=1_234, start=START, end=END
    )
    assert chart.single
    assert (chart.first_at, chart.first_total) == (at, 1_234)
    assert (chart.last_at, chart.last_total) == (at, 1_234)
    assert chart.dot_x == coords(chart)[0][0]
    assert chart.dot_y == coords(chart)[0][1]


def test_first_and_last_points_are_recorded_ones_not_the_chart_edges():
    rows = [(START + timedelta(days=10), 40), (START + timedelta(days=60), 900)]
    chart = charts.score_chart(baseline=None, rows=rows, current_total=900, start=START, end=END)
    assert not chart.single
    assert (chart.first_at, chart.first_total) == rows[0]
    assert (chart.last_at, chart.last_total) == rows[1]
    with_baseline = charts.score_chart(
        baseline=7, rows=rows, current_total=900, start=START, end=END
    )
    assert (with_baseline.first_at, with_baseline.first_total) == (START, 7)
    assert not with_baseline.single
