"""``manage.py process_score_batch``: score every member with a pending snapshot now."""

from typing import Any

from django.core.management.base import BaseCommand

from scoring.scores import scores_process_batch


class Command(BaseCommand):
    help = "Run the score batch: activity score, total, tier and badges for queued members."

    def handle(self, *args: Any, **options: Any) -> None:
        count = scores_process_batch()
        self.stdout.write(f"scored {count} members")
