"""The benchmark's output: a readable table, the JSON line, and the throughput chart (SVG)."""

import json
from collections.abc import Mapping
from html import escape

# The keys every run reports, in this order, first in the JSON line (SPEC: make bench).
REQUIRED_KEYS = (
    "copy_rows_per_s",
    "ingest_events_per_s",
    "ingest_p95_ms",
    "consume_events_per_s",
    "score_members_per_s",
    "page_p95_ms",
    "leaderboard_deep_p95_ms",
    "grant_p95_ms",
)

# key: (direction, goal) — ">=" a rate to reach, "<=" a latency to stay under.
GOALS: dict[str, tuple[str, float]] = {
    "ingest_events_per_s": (">=", 20_000),
    "ingest_p95_ms": ("<=", 50),
    "consume_events_per_s": (">=", 30_000),
    "rescore_dry_run_members_per_s": (">=", 10_000),
    "score_members_per_s": (">=", 40_000),
    # Peak resident memory of the process running the stage (the harness, as a worker).
    # An idle consumer after a drained backlog with autovacuum off, and the freshness of
    # scores after a burst (issue 18).
    "consume_empty_run_ms": ("<=", 20),
    # Consume against COPY into the events table, both of the same run.
    "consume_to_copy_ratio": (">=", 0.6),
    "ingest_to_copy_ratio": (">=", 0.6),
    "score_lag_p95_s": ("<=", 2),
    "consume_peak_rss_mb": ("<=", 300),
    "score_peak_rss_mb": ("<=", 300),
    "page_p95_ms": ("<=", 25),
    "leaderboard_deep_p95_ms": ("<=", 5),
    "grant_p95_ms": ("<=", 100),
    # The history size: each figure with 10M stored events over the same at 1M.
    "history_consume_ratio": (">=", 0.9),
    "history_ingest_ratio": (">=", 0.9),
}

LABELS = {
    "copy_rows_per_s": "COPY ceiling, scratch table (rows/s)",
    "copy_into_events_rows_per_s": "COPY into the events table (rows/s)",
    "ingest_events_per_s": "Ingest, batch 100 (events/s)",
    "ingest_p95_ms": "Ingest, batch 100, p95 (ms)",
    "ingest_to_copy_ratio": "  ingest, batch 100 ÷ COPY into the events table",
    "ingest_b1_events_per_s": "Ingest, single events (events/s)",
    "ingest_b1_p95_ms": "Ingest, single events, p95 (ms)",
    "ingest_b25_events_per_s": "Ingest, batch 25 (events/s)",
    "ingest_b25_p95_ms": "Ingest, batch 25, p95 (ms)",
    "ingest_b500_events_per_s": "Ingest, batch 500 (events/s)",
    "ingest_b500_p95_ms": "Ingest, batch 500, p95 (ms)",
    "ingest_b1000_events_per_s": "Ingest, batch 1000 (events/s)",
    "ingest_b1000_p95_ms": "Ingest, batch 1000, p95 (ms)",
    "consume_events_per_s": "Consume a backlog (events/s)",
    "consume_to_copy_ratio": "  consume ÷ COPY into the events table",
    "consume_empty_run_ms": "Consume, empty run, no vacuum (ms)",
    "consume_empty_run_median_ms": "  next empty runs, median (ms)",
    "consume_empty_run_vacuumed_ms": "  empty run after VACUUM (ms)",
    "history_consume_events_per_s": "Consume, with the stored history (events/s)",
    "history_consume_ratio": "  ratio to consume without it",
    "history_copy_into_events_rows_per_s": "COPY into the events table, with the history (rows/s)",
    "history_ingest_events_per_s": "Ingest, batch 100, with the stored history (events/s)",
    "history_ingest_p95_ms": "Ingest, batch 100, with the stored history, p95 (ms)",
    "history_ingest_ratio": "  ratio to ingest without it",
    "score_members_per_s": "Score batch, every member (members/s)",
    "score_unchanged_members_per_s": "Score batch, nothing changed (members/s)",
    "score_noop_s": "Score batch, nothing pending (s)",
    "rescore_dry_run_members_per_s": "Rescore dry run, every member (members/s)",
    "rescore_apply_members_per_s": "Rescore apply, every member (members/s)",
    "copy_peak_rss_mb": "COPY stages, peak RSS (MiB)",
    "consume_peak_rss_mb": "Consume, peak RSS of the worker (MiB)",
    "score_peak_rss_mb": "Score batch, peak RSS of the worker (MiB)",
    "score_lag_p95_s": "Score lag after a burst, p95 (s)",
    "page_p95_ms": "Pages, slowest p95 (ms)",
    "page_profile_p95_ms": "  /u/<member>/ p95 (ms)",
    "page_staff_member_p95_ms": "  /staff/members/<member>/ p95 (ms)",
    "page_staff_awards_p95_ms": "  /staff/awards/ p95 (ms)",
    "page_leaderboard_p95_ms": "  /leaderboard/ p95 (ms)",
    "page_staff_home_p95_ms": "/staff/ health page p95 (ms)",
    "leaderboard_deep_p95_ms": "Leaderboard deep page p95 (ms)",
    "grant_p95_ms": "Grant POST p95 (ms)",
    "grant_htmx_p95_ms": "Grant POST (htmx) p95 (ms)",
}


def rounded(key: str, value: float | None) -> float | int | None:
    """A figure as reported: rates as integers, times with 1 to 3 decimals."""
    if value is None:
        return None
    if key.endswith("_per_s"):
        return round(value)
    if key.endswith("_ratio"):
        return round(value, 2)
    if key.endswith("_s"):
        return round(value, 3)
    return round(value, 1)


def verdict(key: str, value: float | None) -> str:
    """How the figure compares with its goal: "meets x1.40" or "MISSES x0.30".

    The factor is how many times the goal the figure achieves (goal/figure for latencies).
    """
    if key not in GOALS or value is None:
        return ""
    direction, goal = GOALS[key]
    # For a latency, being under the goal is good: the factor is goal / figure.
    ratio = value / goal if direction == ">=" else goal / value if value else float("inf")
    word = "meets" if ratio >= 1 else "MISSES"
    return f"{word} x{ratio:.2f}"


def goal_text(key: str) -> str:
    """The goal as text, e.g. "≥ 20,000"."""
    if key not in GOALS:
        return ""
    direction, goal = GOALS[key]
    shown = f"{goal:,.0f}" if goal == int(goal) else f"{goal:g}"
    return f"{'≥' if direction == '>=' else '≤'} {shown}"


def json_figures(figures: Mapping[str, float | None], extra: Mapping[str, object]) -> dict:
    """The JSON object: the required keys first, then every other figure, then ``extra``."""
    out: dict[str, object] = {k: rounded(k, figures.get(k)) for k in REQUIRED_KEYS}
    for key, value in figures.items():
        if key not in out:
            out[key] = rounded(key, value)
    out.update(extra)
    return out


def table_text(figures: Mapping[str, float | None], notes: Mapping[str, str]) -> str:
    """The readable table: label, figure, goal, verdict; then the notes."""
    keys = list(REQUIRED_KEYS) + [k for k in LABELS if k not in REQUIRED_KEYS]
    keys += [k for k in figures if k not in keys and "_p50_" not in k]
    order = sorted(keys, key=lambda k: list(LABELS).index(k) if k in LABELS else len(LABELS))
    lines = [f"{'measure':<44} {'figure':>12}  {'goal':>10}  verdict", "-" * 84]
    for key in order:
        value = rounded(key, figures.get(key))
        shown = "n/a" if value is None else f"{value:,}"
        lines.append(
            f"{LABELS.get(key, key):<44} {shown:>12}  {goal_text(key):>10}  {verdict(key, value)}"
        )
    if notes:
        lines.append("")
        lines.extend(f"note: {stage}: {text}" for stage, text in notes.items())
    return "\n".join(lines)


def markdown_table(figures: Mapping[str, float | None]) -> str:
    """The figures against the goals as a Markdown table (for docs/performance.md)."""
    rows = ["| measure | figure | goal | verdict |", "|---|---:|---:|---|"]
    for key in REQUIRED_KEYS + tuple(k for k in LABELS if k not in REQUIRED_KEYS):
        value = rounded(key, figures.get(key))
        shown = "n/a" if value is None else f"{value:,}"
        rows.append(
            f"| {LABELS.get(key, key).strip()} (`{key}`) | {shown} | {goal_text(key)} "
            f"| {verdict(key, value)} |"
        )
    return "\n".join(rows)


def throughput_svg(
    by_batch: Mapping[int, Mapping[str, float | None]],
    *,
    goal: float,
    ceiling: float | None,
    subtitle: str,
) -> str:
    """A bar chart of ingest events/s per batch size, with the p95 over each bar.

    The goal is a dashed line; the COPY ceiling is a line too when it fits within three
    times the tallest bar, else it is stated in the legend.
    """
    width, height = 760, 440
    left, right, top, bottom = 90, 30, 70, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    batches = sorted(by_batch)
    rates = [by_batch[b].get("events_per_s") or 0 for b in batches]
    ceiling_on_chart = ceiling is not None and ceiling <= 3 * max([*rates, goal])
    y_max = max([*rates, goal, ceiling if ceiling_on_chart and ceiling else 0]) * 1.12 or 1
    step = _nice_step(y_max / 5)

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="28" font-size="17" font-weight="600">'
        "Ingest throughput by batch size (POST /ingest, gunicorn 2 workers)</text>",
        f'<text x="{left}" y="48" fill="#555">{escape(subtitle)}</text>',
    ]
    tick = 0.0
    while tick <= y_max:
        ty = y(tick)
        out.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end" fill="#333">'
            f"{tick:,.0f}</text>"
        )
        tick += step
    mid = top + plot_h / 2
    out.append(
        f'<text x="20" y="{mid:.0f}" transform="rotate(-90 20 {mid:.0f})" '
        'text-anchor="middle" fill="#333">events per second</text>'
    )
    slot = plot_w / max(len(batches), 1)
    for i, (batch, rate) in enumerate(zip(batches, rates, strict=True)):
        x = left + i * slot + slot * 0.2
        bar_w = slot * 0.6
        p95 = by_batch[batch].get("p95_ms")
        out.append(
            f'<rect x="{x:.1f}" y="{y(rate):.1f}" width="{bar_w:.1f}" '
            f'height="{top + plot_h - y(rate):.1f}" fill="#3f7d4e"/>'
        )
        label = f"{rate:,.0f}/s" if rate else "n/a"
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y(rate) - 22:.1f}" text-anchor="middle" '
            f'font-weight="600">{label}</text>'
        )
        if p95 is not None:
            out.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y(rate) - 7:.1f}" text-anchor="middle" '
                f'fill="#555">p95 {p95:,.0f} ms</text>'
            )
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 20}" text-anchor="middle">'
            f"{batch}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 25}" text-anchor="middle" fill="#333">'
        "events per request</text>"
    )
    out.append(
        f'<line x1="{left}" y1="{y(goal):.1f}" x2="{left + plot_w}" y2="{y(goal):.1f}" '
        'stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{left + 4}" y="{y(goal) - 5:.1f}" fill="#c0392b">goal {goal:,.0f}/s</text>'
    )
    if ceiling is not None:
        if ceiling_on_chart:
            out.append(
                f'<line x1="{left}" y1="{y(ceiling):.1f}" x2="{left + plot_w}" '
                f'y2="{y(ceiling):.1f}" stroke="#2c5d8a" stroke-width="1.5" '
                'stroke-dasharray="2 3"/>'
            )
            out.append(
                f'<text x="{left + 4}" y="{y(ceiling) - 5:.1f}" fill="#2c5d8a">'
                f"COPY ceiling {ceiling:,.0f} rows/s</text>"
            )
        else:
            out.append(
                f'<text x="{left + plot_w}" y="48" text-anchor="end" fill="#2c5d8a">'
                f"COPY ceiling {ceiling:,.0f} rows/s (off the chart)</text>"
            )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_step(raw: float) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) at or above ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10 ** len(str(int(raw))) / 10
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def json_line(payload: Mapping[str, object]) -> str:
    """The last line of the output: one JSON object."""
    return json.dumps(payload, separators=(", ", ": "))
