"""Ensure the demo staff login exists and print it (used by ``make run``)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

DEMO_STAFF_USERNAME = "warden"
DEMO_STAFF_PASSWORD = "swamp-warden-demo"  # noqa: S105 - a local demo login, printed on purpose


class Command(BaseCommand):
    help = "Create (if missing) and print the demo staff login."

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_STAFF_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_STAFF_PASSWORD)
            user.save()
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="awards"))
        self.stdout.write(
            f"Staff login: {DEMO_STAFF_USERNAME} / {DEMO_STAFF_PASSWORD}  "
            "→ http://127.0.0.1:8000/staff/"
        )
