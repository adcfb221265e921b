"""``manage.py seed_demo``: a realistic demo data set, run through the real pipeline.

~40 members with API keys and 3-6 weeks of ``cli_invocation`` telemetry shaped like the
swamp CLI's (command groups, subcommands, results, durations), with daily streaks, lapsed
members and newcomers, plus the staff login. Events are stored as pending TelemetryEvent
rows and then consumed and scored by the same services the worker runs.

Idempotent: members and keys are created once, every event has a deterministic
``insert_id`` (from ``--seed``), so a second run stores nothing new and the pipeline finds
nothing pending. Dates are relative to today (UTC) on the first run, so streaks are live.
"""

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from awards.models import Award
from awards.services import award_grant, award_revoke
from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.history import score_history_backfill
from scoring.management.commands.demo_login import DEMO_STAFF_USERNAME
from scoring.models import ApiKey, TelemetryEvent
from scoring.scores import scores_process_batch

HANDLES = [
    "bogwitch",
    "mudskipper",
    "reedrunner",
    "fenfox",
    "peatpilot",
    "miremage",
    "siltsmith",
    "croakcoder",
    "duckweed",
    "lilypad",
    "newtonian",
    "cattail",
    "marshmallow",
    "sphagnum",
    "gatorbyte",
    "heronhex",
    "murkmonk",
    "quagqueen",
    "swampsage",
    "tadpole",
    "bayoubard",
    "leechlord",
    "mossmaven",
    "snappingturtle",
    "willowisp",
    "dragonfly",
    "mangrove",
    "pondscum",
    "bullfrog",
    "sedgehog",
    "kelpie",
    "bogbean",
    "waterboatman",
    "mirelight",
    "fogbank",
    "driftwood",
    "sundew",
    "pitcherplant",
    "otterly",
    "muskrat",
]

# Command group → (weight, subcommands). "model" and "workflow" are what most runs are.
COMMANDS = {
    "model": (30, ["run", "list", "describe", "validate", "diff"]),
    "workflow": (25, ["run", "list", "watch", "logs", "cancel"]),
    "data": (15, ["pull", "push", "ls", "query"]),
    "vault": (8, ["get", "set", "list", "rotate"]),
    "extension": (6, ["install", "list", "update", "remove"]),
    "auth": (5, ["login", "whoami", "logout"]),
    "config": (4, ["get", "set", "edit"]),
    "repo": (4, ["init", "status", "sync"]),
}
VERSIONS = ["1.3.2", "1.4.0", "1.4.1"]
PLATFORMS = ["linux", "darwin", "darwin", "linux", "windows"]
# Habits: (share of days active, events per active day, how many weeks back, groups used).
ARCHETYPES = {
    "daily": (0.95, (6, 25), (4, 6), 6),
    "regular": (0.7, (3, 15), (3, 6), 5),
    "weekender": (0.3, (2, 10), (3, 6), 4),
    "lapsed": (0.6, (2, 12), (4, 6), 3),
    "newcomer": (1.0, (2, 8), (1, 1), 2),
    "power": (0.9, (20, 60), (5, 6), 8),
}


def _invocation(rng: random.Random, group: str, at: datetime, uid: str) -> dict:
    subcommand = rng.choice(COMMANDS[group][1])
    duration = int(rng.lognormvariate(6.5, 1.0))
    failed = rng.random() < 0.06
    option_keys = rng.sample(["--json", "--verbose", "--dry-run", "--env", "--profile"], 2)
    return {
        "id": uid,
        "invocation": {
            "command": group,
            "subcommand": subcommand,
            "args": [f"{group}-{rng.randrange(1, 40)}.yaml"] if rng.random() < 0.6 else [],
            "optionKeys": option_keys[: rng.randrange(0, 3)],
            "globalOptions": ["--json"] if rng.random() < 0.3 else [],
        },
        "result": {"status": "error" if failed else "success", "exitCode": 1 if failed else 0},
        "startedAt": at.isoformat().replace("+00:00", "Z"),
        "completedAt": (at + timedelta(milliseconds=duration)).isoformat().replace("+00:00", "Z"),
        "durationMs": duration,
        "swampVersion": rng.choice(VERSIONS),
        "denoVersion": "2.1.4",
        "platform": rng.choice(PLATFORMS),
    }


def _member_events(rng: random.Random, archetype: str, now: datetime) -> list:
    """(insert_id, timestamp, properties) for one member's history, oldest first."""
    share, per_day, weeks, group_count = ARCHETYPES[archetype]
    groups = rng.sample(list(COMMANDS), group_count)
    weights = [COMMANDS[g][0] for g in groups]
    span = rng.randint(weeks[0] * 7, weeks[1] * 7) if archetype != "newcomer" else 5
    # Lapsed members stopped a week or two ago: their streak is over.
    end_offset = rng.randint(4, 14) if archetype == "lapsed" else 0
    events = []
    for offset in range(span - 1, end_offset - 1, -1):
        day = (now - timedelta(days=offset)).date()
        is_weekend = day.weekday() >= 5
        chance = share * (1.6 if archetype == "weekender" and is_weekend else 1)
        # The last few days are always active for daily/power users and newcomers, so
        # the demo shows live streaks.
        always = offset <= 3 and archetype in {"daily", "power", "newcomer"}
        if not always and rng.random() > chance:
            continue
        for _ in range(rng.randint(*per_day)):
            uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                hours=rng.randint(7, 22), minutes=rng.randrange(60), seconds=rng.randrange(60)
            )
            if start > now:  # today, later than now: move it into the past hour
                start = now - timedelta(minutes=rng.randrange(1, 60))
            group = rng.choices(groups, weights)[0]
            events.append((uid, start, _invocation(rng, group, start, uid)))
    return events


class Command(BaseCommand):
    help = "Create the demo members, keys and telemetry, and run it through the pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")

    def handle(self, *args: Any, seed: int, **options: Any) -> None:
        rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        now = datetime.now(UTC)
        user_model = get_user_model()
        with transaction.atomic():
            call_command("demo_login", stdout=StringIO())
            existing = set(
                user_model.objects.filter(username__in=HANDLES).values_list("username", flat=True)
            )
            # Each member's telemetry first (the random sequence is the same as ever), so
            # every new account can join before its first event.
            kinds = list(ARCHETYPES)
            histories = {}
            for i, handle in enumerate(HANDLES):
                archetype = "power" if i < 3 else kinds[rng.randrange(len(kinds))]
                histories[handle] = _member_events(rng, archetype, now)
            new_users = []
            for handle in HANDLES:
                if handle not in existing:
                    first_event = min((at for _, at, _ in histories[handle]), default=now)
                    user = user_model(
                        username=handle,
                        email=f"{handle}@swamp.example",
                        date_joined=_joined_before(first_event, handle),
                    )
                    user.set_unusable_password()  # demo members never log in
                    new_users.append(user)
            user_model.objects.bulk_create(new_users, ignore_conflicts=True)
            members = {u.username: u for u in user_model.objects.filter(username__in=HANDLES)}
            keyed = set(
                ApiKey.objects.filter(owner__in=members.values()).values_list(
                    "owner__username", flat=True
                )
            )
            keys = {}
            for handle in HANDLES:
                if handle not in keyed:
                    keys[handle] = api_key_create(
                        owner=members[handle], scopes=["ingest"], name="swamp CLI"
                    )[0]
            key_of = {k.owner_id: k.pk for k in ApiKey.objects.filter(owner__in=members.values())}

            # Idempotent by insert_id: an event's time can differ between runs (today's
            # later hours are moved before "now"), and the dedup key holds the time.
            known = set(
                TelemetryEvent.objects.filter(member__in=members.values()).values_list(
                    "insert_id", flat=True
                )
            )
            rows = []
            for handle in HANDLES:
                member = members[handle]
                for uid, at, properties in histories[handle]:
                    if uid in known:
                        continue
                    rows.append(
                        TelemetryEvent(
                            insert_id=uid,
                            event="cli_invocation",
                            distinct_id=f"device-{handle}",
                            api_key_id=key_of.get(member.pk),
                            member=member,
                            timestamp=at,
                            received_at=min(at + timedelta(seconds=2), now),
                            properties=properties,
                        )
                    )
            before = TelemetryEvent.objects.count()
            TelemetryEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
            stored = TelemetryEvent.objects.count() - before

        consumed = events_consume()
        scored = scores_process_batch()
        granted = _demo_awards(members, now=now)
        # The pipeline scored everyone once, today; their past is scored as of each day by
        # the same formula, so the profile charts show how each score grew.
        backfilled = score_history_backfill(
            member_ids=[m.pk for m in members.values()],
            until=now.date(),
            award_points_as_of=_award_points_as_of([m.pk for m in members.values()]),
        )
        self.stdout.write(
            f"demo members: {len(members)} ({len(new_users)} new, {len(keys)} new API keys); "
            f"events: {stored} new of {len(rows)}; consumed {consumed}; scored {scored}; "
            f"awards: {granted} new; past scores recorded: {backfilled}"
        )


def _joined_before(first_event: datetime, handle: str) -> datetime:
    """When a demo account joined: one to nine days before its first event, at 08:00 UTC."""
    days = 1 + sum(map(ord, handle)) % 9
    day = (first_event - timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 8, tzinfo=UTC)


def _award_points_as_of(member_ids: list[int]) -> Callable[[int, datetime], int]:
    """A function giving a member's award points in force at a moment, from the ledger:
    awards granted by then and not revoked by then."""
    ledger: dict[int, list[tuple[datetime, datetime | None, int]]] = {}
    awards = Award.objects.filter(recipient_id__in=member_ids).select_related("revocation")
    for award in awards:
        revocation = getattr(award, "revocation", None)
        revoked_at = revocation.revoked_at if revocation is not None else None
        ledger.setdefault(award.recipient_id, []).append(
            (award.granted_at, revoked_at, award.points)
        )

    def points(member_id: int, moment: datetime) -> int:
        return sum(
            p
            for granted_at, revoked_at, p in ledger.get(member_id, [])
            if granted_at <= moment and (revoked_at is None or revoked_at > moment)
        )

    return points


# (handle, points, reason, category, public, days ago); the key is the position. One lifts its
# member into Murk Lurker; one is private; the last one is revoked again.
DEMO_AWARDS = [
    ("bogwitch", 2_500, "Wrote the 'Models from scratch' tutorial", "content", True, 12),
    ("mudskipper", 800, "Reported the vault rotation race", "bug_report", True, 9),
    ("reedrunner", 20_000, "Keynote at Swamp Summit 2026", "event", True, 6),
    ("fenfox", 400, "Answered 50 questions in the community forum", "community", True, 4),
    ("peatpilot", 1_200, "Security disclosure handled privately", "bug_report", False, 3),
    ("miremage", 300, "Organised the Lisbon swamp meetup", "event", True, 2),
    ("siltsmith", 5_000, "Granted twice by mistake", "other", True, 1),
]


def _demo_awards(members: dict, *, now: datetime) -> int:
    """Grant the demo awards through the award service; returns how many were new.

    Idempotent: every award has a fixed key, so a re-run finds them granted (and the
    revocation recorded) and changes nothing.
    """
    staff = get_user_model().objects.get(username=DEMO_STAFF_USERNAME)
    granted = 0
    for n, (handle, points, reason, category, public, days_ago) in enumerate(DEMO_AWARDS):
        result = award_grant(
            recipient=members[handle],
            points=points,
            reason=reason,
            idempotency_key=f"demo-award-{n}",
            granted_by=staff,
            source="form",
            category=category,
            public=public,
            # Never before the member joined.
            granted_at=max(
                now - timedelta(days=days_ago), members[handle].date_joined + timedelta(hours=2)
            ),
        )
        granted += result.created
    duplicate = members["siltsmith"].awards_received.get(idempotency_key="demo-award-6")
    award_revoke(award=duplicate, revoked_by=staff, reason="Duplicate of the form grant")
    return granted
