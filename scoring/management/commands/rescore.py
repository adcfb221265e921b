"""``manage.py rescore --rules N [--dry-run]``: rescore every member under rules version N.

Prints one line per member whose total or tier changes (``name: old → new``, with the
tiers when they move), progress on stderr, and last one JSON line: ``{"members",
"changed", "up", "down", "tier_changes", "applied"}``. ``--dry-run`` writes nothing.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring.models import ScoringRules
from scoring.rescore import MemberMove, rescore_apply, rescore_dry_run, rescore_member_count


class Command(BaseCommand):
    help = "Rescore every member under a rules version (--dry-run: report only, write nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rules", type=int, required=True, help="the rules version")
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
        parser.add_argument(
            "--quiet-members", action="store_true", help="print only the summary line"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        total = rescore_member_count()

        def on_moves(moves: list[MemberMove]) -> None:
            if options["quiet_members"]:
                return
            for move in moves:
                line = f"{move.username}: {move.old_total} → {move.new_total}"
                if move.new_tier != move.old_tier:
                    line += f" (tier {move.old_tier} → {move.new_tier})"
                self.stdout.write(line)

        def progress(done: int) -> None:
            self.stderr.write(f"rescored {done} of {total} members")

        run = rescore_dry_run if options["dry_run"] else rescore_apply
        try:
            report = run(version=options["rules"], progress=progress, on_moves=on_moves)
        except ScoringRules.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(report.summary()))
