"""``manage.py create_api_key <username> --scope ingest [--scope award] [--name N]``."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring.apikeys import api_key_create
from scoring.models import ApiKey


class Command(BaseCommand):
    help = (
        "Create an API key for a member and print it. The key is shown only here, alone on "
        "the last line of the output, so scripts can take it with `tail -n 1`. The command "
        "acts with the owner's own authority, never more: an award key is created only for "
        "an active staff member holding awards.add_award."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the member who owns the key (and its events)")
        parser.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            choices=ApiKey.SCOPES,
            required=True,
            help="a scope to grant; repeat for several (ingest, award)",
        )
        parser.add_argument("--name", default="", help="a label for the key, e.g. the device")

    def handle(
        self, *args: Any, username: str, scopes: list[str], name: str, **options: Any
    ) -> None:
        user_model = get_user_model()
        try:
            owner = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No member named {username!r}.") from None
        # The operator at the server's shell is trusted to act for the owner, but the key
        # service gives a key no more than its owner may do (created_by=None): the same
        # rule as the staff page, so the shell is no way around it.
        try:
            api_key, raw = api_key_create(owner=owner, scopes=scopes, name=name, created_by=None)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"Created API key {api_key.prefix}… for {owner.get_username()} "
            f"(scopes: {', '.join(api_key.scopes)}). Store it now; it is not shown again:"
        )
        self.stdout.write(raw)
