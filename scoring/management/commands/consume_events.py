"""``manage.py consume_events``: drain pending telemetry events now (what the worker does)."""

from django.core.management.base import BaseCommand

from scoring.consumer import events_consume


class Command(BaseCommand):
    help = "Fold every pending telemetry event into member metrics and queue snapshots."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="events per transaction (default: settings.CONSUMER_BATCH_SIZE)",
        )

    def handle(self, *args, batch_size: int | None, **options) -> None:
        count = events_consume(batch_size=batch_size)
        self.stdout.write(f"consumed {count} events")
