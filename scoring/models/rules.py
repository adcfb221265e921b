"""Pipeline runs, the formula's stored rules and the rescore jobs that apply them."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class PipelineRun(models.Model):
    """The latest run of each pipeline stage (and the worker heartbeat), for staff health."""

    kind = models.CharField(max_length=32, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_count = models.BigIntegerField(default=0)
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.kind


class ScoringRules(models.Model):
    """One version of the activity formula's constants (SPEC §6); immutable once saved.

    Version 1 holds the SPEC §6 values (a data migration). The version in force is the one
    activated last (``activated_at``); ``manage.py rescore --rules N`` activates a version
    and rescores every member with it. ``settings.SCORING`` still overrides any constant on
    top of the version in force (docs/scoring.md).
    """

    version = models.PositiveIntegerField(primary_key=True)
    base_points = models.DecimalField(max_digits=12, decimal_places=4, default=10)
    group_cap = models.DecimalField(max_digits=12, decimal_places=4, default=1000)
    # {lower-cased group: cap} overriding ``group_cap`` for those groups.
    group_caps = models.JSONField(default=dict, blank=True)
    diversity_bonus = models.DecimalField(max_digits=12, decimal_places=4, default=50)
    streak_step = models.DecimalField(max_digits=8, decimal_places=6, default="0.02")
    streak_max = models.DecimalField(max_digits=8, decimal_places=6, default="1.5")
    rolling_bonus = models.DecimalField(max_digits=8, decimal_places=6, default="0.5")
    rolling_days = models.PositiveIntegerField(default=30)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "scoring rules"
        ordering = ["version"]
        constraints = [
            models.CheckConstraint(
                condition=Q(version__gte=1)
                & Q(base_points__gte=0)
                & Q(group_cap__gte=0)
                & Q(diversity_bonus__gte=0)
                & Q(streak_step__gte=0)
                & Q(streak_max__gte=1)
                & Q(rolling_bonus__gte=0)
                & Q(rolling_days__gte=1),
                name="scoring_rules_sane_constants",
            ),
        ]

    def __str__(self) -> str:
        return f"rules v{self.version}"


class RescoreJob(models.Model):
    """A rescore of every member under a rules version: a dry run or an apply, run by a
    Celery worker with its progress here (the staff page polls it)."""

    class Kind(models.TextChoices):
        DRY_RUN = "dry_run", "dry run"
        APPLY = "apply"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    rules = models.ForeignKey(ScoringRules, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=8, choices=Kind)
    state = models.CharField(max_length=8, choices=State, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    members_total = models.PositiveIntegerField(default=0)
    members_done = models.PositiveIntegerField(default=0)
    # The report: summary counts, biggest movers and tier moves (``scoring.rescore``).
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} v{self.rules_id} ({self.state})"
