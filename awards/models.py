"""The award ledger (SPEC §3): immutable awards and their revocations."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone


class Award(models.Model):
    """Points granted to a member with a reason; never changed or deleted once written."""

    class Category(models.TextChoices):
        COMMUNITY = "community", "Community"
        BUG_REPORT = "bug_report", "Bug report"
        CONTENT = "content", "Content"
        EVENT = "event", "Event"
        OTHER = "other", "Other"

    class Source(models.TextChoices):
        FORM = "form"
        BULK = "bulk"
        API = "api"

    # No index of its own: awards_award_unique_key and awards_award_recipient_idx both
    # lead with the recipient.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="awards_received",
        db_index=False,
    )
    points = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    staff_note = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category, default=Category.OTHER)
    public = models.BooleanField(default=True)
    idempotency_key = models.CharField(max_length=200)
    # No index of its own: awards_award_granter_idx leads with it.
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="awards_granted",
        db_index=False,
    )
    # The API event's free-text "grantedBy", kept as given (never used for authorization).
    granted_by_text = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source)
    granted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The idempotency guarantee: one award per (recipient, key), enforced by the
            # database so concurrent grants cannot both insert.
            models.UniqueConstraint(
                fields=["recipient", "idempotency_key"], name="awards_award_unique_key"
            ),
            models.CheckConstraint(condition=Q(points__gte=1), name="awards_award_points_min"),
            models.CheckConstraint(
                condition=GreaterThanOrEqual(Length("reason"), 3),
                name="awards_award_reason_min",
            ),
            models.CheckConstraint(
                condition=~Q(idempotency_key=""), name="awards_award_key_not_empty"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-granted_at"], name="awards_award_recipient_idx"),
            models.Index(fields=["-granted_at", "-id"], name="awards_award_time_idx"),
            models.Index(fields=["granted_by", "-granted_at"], name="awards_award_granter_idx"),
            # Budgets count what a granter wrote in the window (not the backdatable granted_at).
            models.Index(fields=["granted_by", "created_at"], name="awards_award_granter_new_idx"),
            models.Index(fields=["category", "-granted_at"], name="awards_award_category_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.points} to {self.recipient_id}: {self.reason[:40]}"


class AwardRevocation(models.Model):
    """The revocation of one award: at most one per award; the award stops counting."""

    award = models.OneToOneField(Award, on_delete=models.PROTECT, related_name="revocation")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="award_revocations",
    )
    reason = models.CharField(max_length=500)
    revoked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["-revoked_at"], name="awards_revocation_time_idx")]

    def __str__(self) -> str:
        return f"revocation of {self.award_id}"


class BulkGrantJob(models.Model):
    """A validated bulk-grant file waiting for confirmation, or being granted.

    The dry run stores the parsed rows here (``rows``) and hands the staff member the
    ``token``; confirming by token grants exactly those rows. ``processed_rows`` is the
    resume point: a job interrupted half-way continues from there, and the rows' award keys
    make any repeated chunk grant nothing twice.
    """

    class Status(models.TextChoices):
        DRY_RUN = "dry_run", "Waiting for confirmation"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Granting"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    token = models.UUIDField(unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bulk_grant_jobs"
    )
    filename = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64)
    # [{"line", "recipient_id", "username", "points", "reason", "category", "key"}, ...]
    rows = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    total_points = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status, default=Status.DRY_RUN)
    processed_rows = models.PositiveIntegerField(default=0)
    granted_count = models.PositiveIntegerField(default=0)
    # Rows above the approval threshold become award requests instead of awards.
    requested_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched after every chunk: a queued or running job whose row stops moving is stalled
    # (lost broker message, killed worker) and is picked up again by the resume task.
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "updated_at"], name="awards_bulkjob_status_idx"),
        ]

    def __str__(self) -> str:
        return f"bulk job {self.token} ({self.status})"

    @property
    def progress_percent(self) -> int:
        """How much of the file has been worked through, 0..100."""
        if not self.row_count:
            return 100
        return min(100, self.processed_rows * 100 // self.row_count)


class AwardRequest(models.Model):
    """A grant above ``AWARD_APPROVAL_THRESHOLD`` waiting for a second staff member.

    It carries everything the award will be; approving grants it through ``award_grant``
    with the same recipient and idempotency key, so the award is created exactly once.
    Unique per (recipient, idempotency key), like the award itself: a replayed event or a
    double submit finds the request already there. ``state`` is stored as ``pending`` until
    a decision (or the expiry sweep); a pending request past ``expires_at`` reads as
    expired everywhere (``effective_state``) and can no longer be approved.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="award_requests"
    )
    points = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    staff_note = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Award.Category, default=Award.Category.OTHER)
    public = models.BooleanField(default=True)
    idempotency_key = models.CharField(max_length=200)
    granted_by_text = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Award.Source)
    # The granter of record once approved (the approver only approves).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="award_requests_made"
    )
    granted_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="award_requests_decided",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    award = models.OneToOneField(
        Award, null=True, blank=True, on_delete=models.PROTECT, related_name="request"
    )

    class Meta:
        permissions = [("approve_award", "Can approve or reject award requests")]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "idempotency_key"], name="awards_awardrequest_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(points__gte=1), name="awards_awardrequest_points_min"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "-created_at"], name="awards_request_state_idx"),
            models.Index(
                fields=["requested_by", "state", "created_at"], name="awards_request_granter_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"request {self.pk}: {self.points} to {self.recipient_id}"

    def effective_state(self, now: datetime | None = None) -> str:
        """The state as staff should see it: a pending request past its expiry is expired."""
        if self.state == self.State.PENDING and self.expires_at <= (now or timezone.now()):
            return self.State.EXPIRED
        return self.state


class GranterBudget(models.Model):
    """A granter's budget row: the lock that serializes their grants, and any override.

    ``points`` overrides ``AWARD_GRANTER_BUDGET`` for this granter (set by a superuser);
    null means the setting. Every grant, request and award event of a granter first locks
    this row (``SELECT ... FOR UPDATE``), so two concurrent grants cannot both spend the
    same remaining budget.
    """

    granter = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grant_budget"
    )
    points = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    def __str__(self) -> str:
        return f"budget of {self.granter_id}"
