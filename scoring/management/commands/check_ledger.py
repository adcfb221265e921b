"""``manage.py check_ledger``: verify every registered invariant; exit 1 listing mismatches."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scoring.registry import ledger_checks


class Command(BaseCommand):
    help = (
        "Check the ledger invariants (award points, scores, tier claims); exit 1 listing "
        "each mismatch, else print 'ledger ok'."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = [
            f"[{name}] {problem}"
            for name, check in sorted(ledger_checks().items())
            for problem in check()
        ]
        if problems:
            for problem in problems:
                self.stdout.write(problem)
            raise CommandError(f"{len(problems)} ledger mismatch(es)", returncode=1)
        self.stdout.write("ledger ok")
