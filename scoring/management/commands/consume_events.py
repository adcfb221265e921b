"""``manage.py consume_events``: drain pending telemetry events now (what the worker does)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scoring.consumer import events_consume


class Command(BaseCommand):
    help = "Fold every pending telemetry event into member metrics and queue snapshots."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="events per transaction (default: settings.CONSUMER_BATCH_SIZE)",
        )

    def handle(self, *args: Any, batch_size: int | None, **options: Any) -> None:
        count = events_consume(batch_size=batch_size)
        self.stdout.write(f"consumed {count} events")
