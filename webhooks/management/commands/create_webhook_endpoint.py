"""``manage.py create_webhook_endpoint <url> --event <type> [--event …] [--format …]``."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.models import WebhookEndpoint
from webhooks.services import endpoint_create


class Command(BaseCommand):
    help = "Create a webhook endpoint; prints its signing secret (whsec_…) on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument(
            "--event",
            action="append",
            required=True,
            choices=WebhookEndpoint.EVENT_TYPES,
            dest="events",
            help="an event type to subscribe to (repeat for more)",
        )
        parser.add_argument("--format", choices=WebhookEndpoint.Format.values, default="json")
        parser.add_argument(
            "--private-awards",
            choices=WebhookEndpoint.PrivateAwards.values,
            default="points",
            help="Discord: announce a private award's points only, or nothing",
        )
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            endpoint, secret = endpoint_create(
                url=options["url"],
                event_types=options["events"],
                format=options["format"],
                private_awards=options["private_awards"],
                description=options["description"],
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            )
            raise CommandError(problems) from exc
        self.stdout.write(
            f"Created webhook endpoint #{endpoint.pk} → {endpoint.url} "
            f"({endpoint.format}; {', '.join(endpoint.event_types)}). "
            "The signing secret is shown once:"
        )
        self.stdout.write(secret)
