"""factory-boy factories shared by the whole suite."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory


class UserFactory(DjangoModelFactory):
    """A member (a Django auth user); ``staff=True`` makes a staff user."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"operative{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("swamp-pass-123")

    class Params:
        staff = factory.Trait(is_staff=True)


class TelemetryEventFactory(DjangoModelFactory):
    """A pending ``cli_invocation`` event as the swamp CLI sends it."""

    class Meta:
        model = "scoring.TelemetryEvent"

    insert_id = factory.Sequence(lambda n: f"evt-{n:08d}")
    event = "cli_invocation"
    member = factory.SubFactory(UserFactory)
    distinct_id = factory.LazyAttribute(lambda e: f"device-{e.member.username}")
    timestamp = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyAttribute(
        lambda e: {
            "id": e.insert_id,
            "invocation": {
                "command": "model",
                "subcommand": "run",
                "args": [],
                "optionKeys": [],
                "globalOptions": {},
            },
            "result": {"status": "success", "exitCode": 0},
            "startedAt": e.timestamp.isoformat(),
            "completedAt": e.timestamp.isoformat(),
            "durationMs": 120,
            "swampVersion": "1.4.0",
            "denoVersion": "2.1.0",
            "platform": "linux",
        }
    )
