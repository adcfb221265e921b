"""``manage.py telemetry_partitions``: create partitions ahead and retire old ones now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scoring.partitions import partitions_create_ahead, partitions_list
from scoring.retention import partitions_retire


class Command(BaseCommand):
    help = (
        "Create the events table's monthly partitions ahead, then export and drop processed "
        "partitions older than TELEMETRY_RETENTION_MONTHS (PostgreSQL; nothing on SQLite)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-retire", action="store_true", help="only create partitions ahead")

    def handle(self, *args: Any, no_retire: bool, **options: Any) -> None:
        for name in partitions_create_ahead():
            self.stdout.write(f"created {name}")
        if not no_retire:
            for retired in partitions_retire():
                self.stdout.write(f"retired {retired.name}: {retired.rows} events → {retired.path}")
        names = [p.name for p in partitions_list()]
        self.stdout.write(
            f"{len(names)} monthly partitions" + (f": {names[0]} … {names[-1]}" if names else "")
        )
