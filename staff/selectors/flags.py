"""Unusual grants, flagged on /staff/ for a second look — flags, never blocks.

Three signals, each over recent awards (by when they were written, ``created_at``):

- **repeat**: one granter gave one member more than ``AWARD_FLAG_REPEAT_COUNT`` awards in
  the last 30 days;
- **large**: an award of the last 30 days above the 95th percentile of all awards of the
  last 90 days (nearest rank; only once there are at least ``PERCENTILE_MIN_AWARDS`` to
  make a percentile meaningful);
- **new account**: an award to a member whose account was younger than 7 days then.

Each flag links to the audit entries behind it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, F, Sum
from django.urls import reverse
from django.utils import timezone

from awards.models import Award

RECENT_DAYS = 30
PERCENTILE_DAYS = 90
PERCENTILE = 95
PERCENTILE_MIN_AWARDS = 20
NEW_ACCOUNT_DAYS = 7
LIMIT = 10


@dataclass(frozen=True)
class Flag:
    """One unusual grant (or pair of granter and member) and where its audit trail is."""

    kind: str  # "repeat", "large" or "new_account"
    granter: str
    member: str
    points: int
    detail: str
    audit_url: str
    award_id: int | None = None


def _audit_url(**params: str) -> str:
    return reverse("staff:audit") + "?" + urlencode(params)


def _award_flag(award: Award, kind: str, detail: str) -> Flag:
    return Flag(
        kind=kind,
        granter=award.granted_by.username if award.granted_by else "",
        member=award.recipient.username,
        points=award.points,
        detail=detail,
        audit_url=_audit_url(object_type="award", object_id=str(award.pk)),
        award_id=award.pk,
    )


def percentile_points(*, now: datetime | None = None) -> int | None:
    """The 95th percentile (nearest rank) of award points over the last 90 days, or None.

    Two queries (the count, then the one value at that rank), on any database.
    """
    now = now or timezone.now()
    window = Award.objects.filter(created_at__gte=now - timedelta(days=PERCENTILE_DAYS))
    count = window.count()
    if count < PERCENTILE_MIN_AWARDS:
        return None
    rank = -(-PERCENTILE * count // 100)  # ceil(0.95 n), 1-based
    return window.order_by("points").values_list("points", flat=True)[rank - 1]


def award_flags(*, now: datetime | None = None) -> list[Flag]:
    """Every flag of the last 30 days, the most points first within each kind (≤ 6 queries)."""
    now = now or timezone.now()
    recent = Award.objects.filter(created_at__gte=now - timedelta(days=RECENT_DAYS))
    flags: list[Flag] = []

    repeat_over = settings.AWARD_FLAG_REPEAT_COUNT
    pairs = (
        recent.filter(granted_by__isnull=False)
        .values("granted_by__username", "recipient__username")
        .annotate(n=Count("id"), total=Sum("points"))
        .filter(n__gt=repeat_over)
        .order_by("-n", "-total")[:LIMIT]
    )
    for pair in pairs:
        granter, member = pair["granted_by__username"], pair["recipient__username"]
        flags.append(
            Flag(
                kind="repeat",
                granter=granter,
                member=member,
                points=pair["total"],
                detail=f"{pair['n']} awards from {granter} to {member} in {RECENT_DAYS} days "
                f"(more than {repeat_over})",
                audit_url=_audit_url(actor=granter, member=member),
            )
        )

    threshold = percentile_points(now=now)
    if threshold is not None:
        for award in (
            recent.filter(points__gt=threshold)
            .select_related("recipient", "granted_by")
            .order_by("-points", "-id")[:LIMIT]
        ):
            flags.append(
                _award_flag(
                    award,
                    "large",
                    f"{award.points:,} points: above the {PERCENTILE}th percentile "
                    f"({threshold:,}) of the last {PERCENTILE_DAYS} days",
                )
            )

    for award in (
        recent.filter(created_at__lt=F("recipient__date_joined") + timedelta(days=NEW_ACCOUNT_DAYS))
        .select_related("recipient", "granted_by")
        .order_by("-points", "-id")[:LIMIT]
    ):
        age = award.created_at - award.recipient.date_joined
        flags.append(
            _award_flag(
                award,
                "new_account",
                f"to an account {max(age.days, 0)} day(s) old (younger than "
                f"{NEW_ACCOUNT_DAYS} days)",
            )
        )
    return flags
