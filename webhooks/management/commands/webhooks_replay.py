"""``manage.py webhooks_replay --since <time> [--until <time>] [--endpoint <id>]``."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime, parse_duration

from webhooks.models import WebhookEndpoint
from webhooks.services import webhooks_replay


def _moment(value: str, *, option: str) -> datetime:
    """An ISO date/time (UTC if no offset) or a duration ago (e.g. ``2h`` style ``02:00:00``,
    ``1 00:00:00``)."""
    text = value.strip()
    parsed = parse_datetime(text)
    if parsed is None and (day := parse_date(text)) is not None:
        parsed = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - made aware below
    if parsed is None:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        if text[:-1].isdigit() and text[-1:] in units:
            return timezone.now() - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        duration = parse_duration(text)
        if duration is None:
            raise CommandError(
                f"{option}: expected an ISO date or time (2026-11-28T09:00Z) "
                "or an age (90m, 2h, 7d)."
            )
        return timezone.now() - duration
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


class Command(BaseCommand):
    help = "Send the outbox events of a time range again, with their original ids."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO date/time, or an age: 90m, 2h, 7d")
        parser.add_argument("--until", help="ISO date/time, or an age (default: now)")
        parser.add_argument("--endpoint", type=int, help="only this endpoint (its id)")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _moment(options["since"], option="--since")
        until = _moment(options["until"], option="--until") if options["until"] else None
        endpoint = None
        if options["endpoint"] is not None:
            endpoint = WebhookEndpoint.objects.filter(pk=options["endpoint"]).first()
            if endpoint is None:
                raise CommandError(f"--endpoint: no webhook endpoint #{options['endpoint']}.")
        count = webhooks_replay(since=since, until=until, endpoint=endpoint)
        self.stdout.write(f"Queued {count} deliveries again (same webhook-id as before).")
