"""Realistic benchmark data: members, CLI-shaped telemetry, awards and score history.

Pure Python with a seeded ``random.Random``: the same seed gives the same data set. Nothing
here imports Django, so the HTTP load generator's processes can use it too. Rows are written
in PostgreSQL's COPY text format and loaded with ``cursor.copy()`` (set-based, no ORM).

Events follow SPEC §4 as the swamp CLI sends them: ``properties`` has ``id``,
``invocation{command, subcommand, args, optionKeys, globalOptions}``, ``result{status,
exitCode}``, ``startedAt``, ``completedAt``, ``durationMs``, ``swampVersion``,
``denoVersion`` and ``platform``. Activity is skewed the way community telemetry is: a few
members run thousands of commands, most run a handful, on a few days, some on a streak
ending today.
"""

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# (command group, weight, subcommands) — None means a command without a subcommand.
COMMANDS: tuple[tuple[str, int, tuple[str | None, ...]], ...] = (
    ("model", 30, ("run", "create", "get", "list", "validate", "delete", "edit")),
    ("workflow", 22, ("run", "create", "validate", "history", "get", "list")),
    ("data", 14, ("get", "list", "search", "gc", "versions")),
    ("vault", 6, ("put", "get", "list", "delete")),
    ("repo", 6, ("init", "status", "upgrade")),
    ("extension", 4, ("install", "list", "update", "remove")),
    ("type", 4, ("search", "describe")),
    ("auth", 3, ("login", "whoami", "logout")),
    ("update", 2, (None,)),
    ("version", 2, (None,)),
    ("telemetry", 1, ("status", "disable")),
    ("issue", 1, ("bug", "feature")),
)
GROUP_NAMES = tuple(c[0] for c in COMMANDS)
GROUP_WEIGHTS = tuple(c[1] for c in COMMANDS)
SUBCOMMANDS = {c[0]: c[2] for c in COMMANDS}
OPTION_KEYS = ("--json", "--verbose", "--repo-dir", "--input", "--dry-run", "--force", "--tag")
PLATFORMS = ("linux-x86_64", "darwin-aarch64", "darwin-x86_64", "windows-x86_64")
PLATFORM_WEIGHTS = (45, 35, 8, 12)
SWAMP_VERSIONS = ("0.9.4", "0.10.0", "0.10.2", "0.11.0", "0.11.1")
DENO_VERSIONS = ("2.1.4", "2.2.3", "2.3.1")
ARG_WORDS = (
    "ec2-fleet", "billing-report", "dns-zone", "nightly-backup", "vpc-main", "s3-logs",
    "k8s-prod", "rotate-keys", "gh-runner", "postgres-ha", "cdn-edge", "cost-audit",
)  # fmt: skip

HANDLE_LEFT = (
    "bog", "murk", "mire", "fen", "reed", "silt", "peat", "bayou", "marsh", "sludge", "moss",
    "heron", "newt", "toad", "gator", "eel", "cypress", "lily", "mud", "swamp",
)  # fmt: skip
HANDLE_RIGHT = (
    "walker", "lurker", "stalker", "haunt", "wraith", "warden", "shaman", "lord", "beast",
    "diver", "runner", "smith", "coder", "ops", "hacker", "witch", "rat", "king", "fox",
)  # fmt: skip

AWARD_REASONS = (
    ("community", "Answered {n} questions in #swamp-help this month"),
    ("community", "Welcomed {n} new operatives in the forum"),
    ("bug_report", "Reported a data loss bug in `vault put` with a clean reproduction"),
    ("bug_report", "Found {n} crashes in `workflow run` on Windows"),
    ("content", "Wrote the guide on workflow retries ({n} pages)"),
    ("content", "Recorded a talk on modelling DNS zones with swamp"),
    ("event", "Ran the Bayou meetup #{n}"),
    ("event", "Mentored at the winter hack night, team {n}"),
    ("other", "Beta-tested the {n}th extension release"),
)
AWARD_POINTS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
AWARD_POINT_WEIGHTS = (10, 20, 25, 20, 10, 7, 5, 2, 1)
AWARD_SOURCES = ("form", "bulk", "api")
AWARD_SOURCE_WEIGHTS = (60, 30, 10)

EVENT_COLUMNS = (
    "insert_id", "event", "distinct_id", "member_id", "timestamp", "received_at",
    "properties", "error",
)  # fmt: skip
AWARD_COLUMNS = (
    "recipient_id", "points", "reason", "staff_note", "category", "public",
    "idempotency_key", "granted_by_id", "granted_by_text", "source", "granted_at", "created_at",
)  # fmt: skip
HISTORY_COLUMNS = (
    "member_id", "recorded_at", "activity_score", "award_points", "total_score", "tier",
)  # fmt: skip
USER_COLUMNS = (
    "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff",
    "is_active", "date_joined",
)  # fmt: skip


def fake_uuid(rng: random.Random) -> str:
    """A random version-4 UUID string, from ``rng`` (reproducible, faster than uuid4())."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def iso_z(moment: datetime) -> str:
    """ISO-8601 with milliseconds and a ``Z``, as the CLI writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def copy_escape(text: str) -> str:
    """Escape a value for PostgreSQL's COPY text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def member_handles(rng: random.Random, count: int) -> list[str]:
    """``count`` unique, handle-like usernames (``bog_walker_4821``)."""
    handles = []
    for i in range(count):
        left, right = rng.choice(HANDLE_LEFT), rng.choice(HANDLE_RIGHT)
        handles.append(f"{left}_{right}_{i}")
    return handles


def cli_properties(rng: random.Random, *, event_id: str, group: str, started_at: datetime) -> dict:
    """The ``properties`` of one ``cli_invocation`` event, as the swamp CLI sends them."""
    subcommand = rng.choice(SUBCOMMANDS[group])
    duration_ms = int(rng.lognormvariate(5.5, 1.2)) + 1
    ok = rng.random() < 0.92
    options = rng.sample(OPTION_KEYS, k=rng.choice((0, 0, 1, 1, 2, 3)))
    invocation: dict = {
        "command": group,
        "args": [rng.choice(ARG_WORDS)] if subcommand and rng.random() < 0.7 else [],
        "optionKeys": options,
        "globalOptions": ["--json"] * ("--json" in options) + ["--verbose"] * (rng.random() < 0.1),
    }
    if subcommand:
        invocation["subcommand"] = subcommand
    return {
        "id": event_id,
        "invocation": invocation,
        "result": {"status": "success" if ok else "error", "exitCode": 0 if ok else 1},
        "startedAt": iso_z(started_at),
        "completedAt": iso_z(started_at + timedelta(milliseconds=duration_ms)),
        "durationMs": duration_ms,
        "swampVersion": rng.choice(SWAMP_VERSIONS),
        "denoVersion": rng.choice(DENO_VERSIONS),
        "platform": rng.choices(PLATFORMS, PLATFORM_WEIGHTS)[0],
    }


def cli_event(
    rng: random.Random, *, distinct_id: str, started_at: datetime, event_id: str | None = None
) -> dict:
    """One ``cli_invocation`` event in the ingest API's shape (SPEC §4)."""
    event_id = event_id or fake_uuid(rng)
    group = rng.choices(GROUP_NAMES, GROUP_WEIGHTS)[0]
    properties = cli_properties(rng, event_id=event_id, group=group, started_at=started_at)
    return {
        "event": "cli_invocation",
        "distinct_id": distinct_id,
        "timestamp": properties["completedAt"],
        "properties": properties,
    }


@dataclass(frozen=True)
class MemberPlan:
    """How active one member is: event count, favourite groups and active day offsets."""

    member_id: int
    device_ids: tuple[str, ...]
    events: int
    groups: tuple[str, ...]
    group_weights: tuple[int, ...]
    # Days before today (0 = today) on which the member ran commands.
    day_offsets: tuple[int, ...]


def activity_plan(
    rng: random.Random, member_ids: Sequence[int], total_events: int, days: int
) -> list[MemberPlan]:
    """Split ``total_events`` over members (heavy-tailed, at least one each) and days."""
    count = len(member_ids)
    if total_events < count:
        raise ValueError("need at least one event per member")
    # Pareto(1.16) is the 80/20 rule; the cap keeps one member from taking the whole set.
    weights = [min(rng.paretovariate(1.16), 2000.0) for _ in range(count)]
    scale = (total_events - count) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in rng.choices(range(count), weights=weights, k=total_events - sum(counts)):
        counts[i] += 1
    plans = []
    for member_id, n in zip(member_ids, counts, strict=True):
        n_groups = min(len(GROUP_NAMES), 1 + int(rng.expovariate(0.45)))
        groups = tuple(dict.fromkeys(rng.choices(GROUP_NAMES, GROUP_WEIGHTS, k=n_groups)))
        group_weights = tuple(rng.randint(1, 10) for _ in groups)
        active = min(n, days, max(1, round(n**0.6)))
        # A run of consecutive days (a streak, often ending today or yesterday) plus
        # scattered days before it.
        end = rng.choice((0, 0, 0, 1)) if rng.random() < 0.45 else rng.randint(2, days - 1)
        run = rng.randint(1, max(1, min(active, days - end)))
        offsets = set(range(end, min(days, end + run)))
        while len(offsets) < active:
            offsets.add(rng.randrange(days))
        devices = tuple(fake_uuid(rng) for _ in range(1 if rng.random() < 0.8 else 2))
        plans.append(
            MemberPlan(member_id, devices, n, groups, group_weights, tuple(sorted(offsets)))
        )
    return plans


def event_copy_lines(
    rng: random.Random, plans: Sequence[MemberPlan], now: datetime
) -> Iterator[str]:
    """COPY text lines (``EVENT_COLUMNS``) of every planned event (queued by the events
    table's trigger when loaded: pending)."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    seconds_today = max(1, int((now - today).total_seconds()) - 60)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for plan in plans:
        groups = rng.choices(plan.groups, plan.group_weights, k=plan.events)
        days = rng.choices(plan.day_offsets, k=plan.events)
        for group, offset in zip(groups, days, strict=True):
            day = today - timedelta(days=offset)
            started = day + timedelta(
                seconds=rng.randrange(seconds_today if offset == 0 else 86_400),
                milliseconds=rng.randrange(1000),
            )
            event_id = fake_uuid(rng)
            props = cli_properties(rng, event_id=event_id, group=group, started_at=started)
            completed = started + timedelta(milliseconds=props["durationMs"])
            received = completed + timedelta(milliseconds=rng.randint(20, 4000))
            yield (
                f"{event_id}\tcli_invocation\t{rng.choice(plan.device_ids)}\t{plan.member_id}\t"
                f"{completed.isoformat()}\t{received.isoformat()}\t"
                f"{copy_escape(dumps(props))}\t\n"
            )


def write_lines(path: Path, lines: Iterator[str]) -> int:
    """Write COPY lines to ``path``; return how many."""
    count = 0
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        for line in lines:
            out.write(line)
            count += 1
    return count


def user_copy_lines(handles: Sequence[str], joined: datetime) -> Iterator[str]:
    """COPY lines (``USER_COLUMNS``) for plain members with unusable passwords."""
    stamp = joined.isoformat()
    for handle in handles:
        yield f"!bench\tf\t{handle}\t\t\t{handle}@example.com\tf\tt\t{stamp}\n"


def award_copy_lines(
    rng: random.Random,
    *,
    count: int,
    recipients: Sequence[int],
    recipient_weights: Sequence[float],
    granters: Sequence[int],
    now: datetime,
    days: int,
) -> Iterator[str]:
    """COPY lines (``AWARD_COLUMNS``) of ``count`` awards, most to the most active members."""
    picked = rng.choices(recipients, weights=recipient_weights, k=count)
    for recipient in picked:
        category, template = rng.choice(AWARD_REASONS)
        reason = template.format(n=rng.randint(2, 40))
        note = "Checked with the docs team." if rng.random() < 0.2 else ""
        granted = now - timedelta(seconds=rng.randrange(days * 86_400))
        yield (
            f"{recipient}\t{rng.choices(AWARD_POINTS, AWARD_POINT_WEIGHTS)[0]}\t"
            f"{copy_escape(reason)}\t{note}\t{category}\t{'t' if rng.random() < 0.9 else 'f'}\t"
            f"{fake_uuid(rng)}\t{rng.choice(granters)}\t\t"
            f"{rng.choices(AWARD_SOURCES, AWARD_SOURCE_WEIGHTS)[0]}\t"
            f"{granted.isoformat()}\t{granted.isoformat()}\n"
        )


def history_copy_lines(
    rng: random.Random,
    scores: Sequence[tuple[int, int, int]],
    *,
    per_member: int,
    now: datetime,
    days: int,
    tier_floors: Sequence[tuple[int, int]],
) -> Iterator[str]:
    """Past ScoreHistory lines (``HISTORY_COLUMNS``) rising towards each current score.

    ``scores`` holds (member_id, activity_score, award_points); ``tier_floors`` holds
    (ordinal, floor) lowest floor first.
    """

    def tier(total: int) -> int:
        ordinal = tier_floors[0][0]
        for o, floor in tier_floors:
            if total >= floor:
                ordinal = o
        return ordinal

    for member_id, activity, awards in scores:
        points = rng.randint(0, 2 * per_member)
        offsets = sorted(rng.sample(range(1, days), k=min(points, days - 1)), reverse=True)
        for step, offset in enumerate(offsets, start=1):
            share = step / (len(offsets) + 1)
            act, aw = int(activity * share), int(awards * share)
            moment = now - timedelta(days=offset, seconds=rng.randrange(86_400))
            yield f"{member_id}\t{moment.isoformat()}\t{act}\t{aw}\t{act + aw}\t{tier(act + aw)}\n"


def today_utc(now: datetime) -> date:
    """The UTC date of ``now``."""
    return now.astimezone(UTC).date()


STORED_COLUMNS = EVENT_COLUMNS


def stored_event_copy_lines(
    rng: random.Random,
    member_ids: Sequence[int],
    *,
    count: int,
    start: datetime,
    end: datetime,
) -> Iterator[str]:
    """COPY lines (``STORED_COLUMNS``) of ``count`` processed past events in [start, end)
    (loaded with the enqueue trigger disabled: never queued, no ``error``: processed).

    The history a live system accumulates: spread evenly over the range (so over its
    monthly partitions), already consumed. Built from a few hundred rendered property
    documents with the id and times substituted per row, so ten million rows take a
    minute or two of Python rather than the full generator's per-event JSON encoding.
    """
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    templates = []
    for _ in range(512):
        group = rng.choices(GROUP_NAMES, GROUP_WEIGHTS)[0]
        props = cli_properties(rng, event_id="@ID@", group=group, started_at=start)
        props["startedAt"], props["completedAt"] = "@S@", "@C@"
        templates.append((copy_escape(dumps(props)), props["durationMs"]))
    span_ms = (int((end - start).total_seconds()) - 60) * 1000
    base = start.astimezone(UTC)
    minutes: dict[int, str] = {}

    def minute(index: int) -> str:
        # "2026-03-01T14:50", rendered once per minute of the range.
        text = minutes.get(index)
        if text is None:
            text = minutes[index] = (base + timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M")
        return text

    getrandbits, choice = rng.getrandbits, rng.choice
    for _ in range(count):
        text, duration_ms = templates[getrandbits(9)]
        at = getrandbits(62) % span_ms
        done = at + duration_ms
        s_min, s_ms = divmod(at, 60_000)
        c_min, c_ms = divmod(done, 60_000)
        started = f"{minute(s_min)}:{s_ms // 1000:02d}.{s_ms % 1000:03d}Z"
        completed = f"{minute(c_min)}:{c_ms // 1000:02d}.{c_ms % 1000:03d}"
        h = f"{getrandbits(128):032x}"
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
        stamp = f"{completed}+00"
        yield (
            f"{event_id}\tcli_invocation\tdevice-history\t{choice(member_ids)}\t{stamp}\t"
            f"{stamp}\t"
            + text.replace("@ID@", event_id).replace("@S@", started).replace("@C@", f"{completed}Z")
            + "\t\n"
        )
