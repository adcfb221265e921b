"""Scores, their history, tier badges and tier changes (SPEC §3)."""

from django.conf import settings
from django.db import models


class UserScore(models.Model):
    """A member's current score and tier; its row is the lock that serializes refreshes."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="score",
    )
    # Denormalized so the leaderboard order (-total_score, username) is one index scan.
    username = models.CharField(max_length=150)
    activity_score = models.BigIntegerField(default=0)
    award_points = models.BigIntegerField(default=0)
    total_score = models.BigIntegerField(default=0)
    tier = models.PositiveSmallIntegerField(default=1)
    streak_days = models.PositiveIntegerField(default=0)
    active_days = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()
    # What the activity score was computed from, so it can be explained exactly as it was
    # computed (never recomputed with today's date): the rules version, the day "as of",
    # and the formula's inputs (``scoring.explain`` documents the document's keys).
    rules_version = models.PositiveIntegerField(default=1, db_default=1)
    as_of = models.DateField(null=True, blank=True)
    breakdown = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-total_score", "username"], name="scoring_score_board_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.total_score}"


class ScoreHistory(models.Model):
    """One row each time a member's total changes."""

    # No index of its own: (member, recorded_at) below serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="score_history",
        db_index=False,
    )
    recorded_at = models.DateTimeField()
    activity_score = models.BigIntegerField()
    award_points = models.BigIntegerField()
    total_score = models.BigIntegerField()
    tier = models.PositiveSmallIntegerField()
    rules_version = models.PositiveIntegerField(default=1, db_default=1)

    class Meta:
        verbose_name_plural = "score history"
        indexes = [
            models.Index(fields=["member", "recorded_at"], name="scoring_history_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.total_score} @ {self.recorded_at:%Y-%m-%d}"


class TierBadgeClaim(models.Model):
    """A tier badge a member has reached; permanent, one per member and tier."""

    # No index of its own: the unique (member, tier) serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tier_claims",
        db_index=False,
    )
    tier = models.PositiveSmallIntegerField()
    claimed_at = models.DateTimeField()
    total_at_claim = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "tier"], name="scoring_claim_unique_tier"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} tier {self.tier}"


class TierChange(models.Model):
    """One row per refresh that moved a member's tier."""

    class Cause(models.TextChoices):
        ACTIVITY = "activity"
        AWARD = "award"
        REVOCATION = "revocation"
        RULES = "rules"

    # No index of its own: (member, changed_at) below serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tier_changes",
        db_index=False,
    )
    from_tier = models.PositiveSmallIntegerField()
    to_tier = models.PositiveSmallIntegerField()
    cause = models.CharField(max_length=12, choices=Cause)
    total_score = models.BigIntegerField()
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["member", "changed_at"], name="scoring_tierchange_member_idx"),
            models.Index(fields=["-changed_at"], name="scoring_tierchange_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.from_tier}→{self.to_tier} ({self.cause})"
