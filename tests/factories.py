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
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"operative{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("swamp-pass-123")

    class Params:
        staff = factory.Trait(is_staff=True)

    @factory.post_generation
    def granter(self, create, extracted, **kwargs):
        """``granter=True``: staff holding ``awards.add_award``, as an award key's owner must be."""
        if create and extracted:
            granter_make(self)

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        """``permissions=["awards.add_award", ...]`` gives the user those permissions."""
        if not create or not extracted:
            return
        from django.contrib.auth.models import Permission

        for name in extracted:
            app_label, codename = name.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class TelemetryEventFactory(DjangoModelFactory):
    """A pending ``cli_invocation`` event as the swamp CLI sends it; ``status="processed"``
    (or ``"rejected"``, with ``error``) stores one the consumer is done with."""

    class Meta:
        model = "scoring.TelemetryEvent"
        skip_postgeneration_save = True

    insert_id = factory.Sequence(lambda n: f"evt-{n:08d}")
    event = "cli_invocation"
    member = factory.SubFactory(UserFactory)
    distinct_id = factory.LazyAttribute(lambda e: f"device-{e.member.username}")
    timestamp = factory.LazyFunction(timezone.now)
    # Received when sent: an event dated weeks ago is not "late" (TELEMETRY_MAX_AGE_DAYS)
    # unless a test says it arrived later.
    received_at = factory.LazyAttribute(lambda e: e.timestamp)
    properties = factory.LazyAttribute(
        lambda e: {
            "id": e.insert_id,
            "invocation": {
                "command": "model",
                "subcommand": "run",
                "args": [],
                "optionKeys": [],
                "globalOptions": [],
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

    @factory.post_generation
    def status(self, create, extracted, **kwargs):
        """Not pending: off the consumer's queue, where the events table's trigger put it."""
        if create and extracted and extracted != "pending":
            from scoring.models import PendingEvent

            PendingEvent.objects.filter(event_id=self.pk).delete()


class UserScoreFactory(DjangoModelFactory):
    """A member's current score; ``total_score`` defaults to activity + awards."""

    class Meta:
        model = "scoring.UserScore"

    member = factory.SubFactory(UserFactory)
    username = factory.LazyAttribute(lambda s: s.member.username)
    activity_score = 0
    award_points = 0
    total_score = factory.LazyAttribute(lambda s: s.activity_score + s.award_points)
    tier = 1
    computed_at = factory.LazyFunction(timezone.now)


class ScoreHistoryFactory(DjangoModelFactory):
    """One recorded total of a member."""

    class Meta:
        model = "scoring.ScoreHistory"

    member = factory.SubFactory(UserFactory)
    recorded_at = factory.LazyFunction(timezone.now)
    activity_score = factory.LazyAttribute(lambda h: h.total_score - h.award_points)
    award_points = 0
    total_score = 0
    tier = 1


class MemberMetricsFactory(DjangoModelFactory):
    """A member's folded telemetry metrics."""

    class Meta:
        model = "scoring.MemberMetrics"

    member = factory.SubFactory(UserFactory)


class TierBadgeClaimFactory(DjangoModelFactory):
    """A claimed tier badge."""

    class Meta:
        model = "scoring.TierBadgeClaim"

    member = factory.SubFactory(UserFactory)
    tier = 1
    claimed_at = factory.LazyFunction(timezone.now)
    total_at_claim = 0


class AwardFactory(DjangoModelFactory):
    """An award row written directly (tests of the grant service use the service instead)."""

    class Meta:
        model = "awards.Award"

    recipient = factory.SubFactory(UserFactory)
    points = 100
    reason = factory.Sequence(lambda n: f"Helped a fellow operative #{n}")
    staff_note = ""
    category = "community"
    public = True
    idempotency_key = factory.Sequence(lambda n: f"award-key-{n}")
    granted_by = None
    source = "form"
    granted_at = factory.LazyFunction(timezone.now)


class AwardRevocationFactory(DjangoModelFactory):
    """The revocation of an award."""

    class Meta:
        model = "awards.AwardRevocation"

    award = factory.SubFactory(AwardFactory)
    reason = "Granted by mistake"
    revoked_at = factory.LazyFunction(timezone.now)


def granter_make(user):
    """Make ``user`` staff holding ``awards.add_award`` — what an award key's owner must be."""
    from django.contrib.auth.models import Permission

    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="awards", codename="add_award")
    )
    return user
