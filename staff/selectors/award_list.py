"""The staff award list: filters and keyset pages (/staff/awards/).

A page costs the same on a ledger of any size: every filter is served by an index of
``Award`` and pages are read by keyset, never by OFFSET.
"""

import hashlib
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta

from django.core.cache import cache
from django.db.models import BigIntegerField, Q, QuerySet, Subquery

from awards.models import Award, AwardRevocation

# A filtered count is reused for at most this long even when the ledger's fingerprint has
# not moved (see ``award_list_count``).
COUNT_CACHE_S = 60


@dataclass(frozen=True)
class AwardFilters:
    """The award list's filters; empty values do not filter."""

    member: object | None = None  # the recipient (a user)
    category: str = ""
    granter: object | None = None  # the granter of record (a user)
    date_from: date | None = None
    date_to: date | None = None
    status: str = ""  # "", "active" or "revoked"


def award_list(*, filters: AwardFilters) -> QuerySet[Award]:
    """Awards matching ``filters``, newest first, with everything the list shows joined in.

    The date range is inclusive and in UTC. Every filter is served by an index of
    ``Award`` (recipient, granter, category, time), so a page costs the same on a ledger of
    any size.
    """
    qs = Award.objects.select_related(
        "recipient", "granted_by", "revocation", "revocation__revoked_by"
    ).order_by("-granted_at", "-id")
    if filters.member is not None:
        qs = qs.filter(recipient=filters.member)
    if filters.granter is not None:
        qs = qs.filter(granted_by=filters.granter)
    if filters.category:
        qs = qs.filter(category=filters.category)
    if filters.date_from:
        qs = qs.filter(granted_at__gte=_day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:
        qs = qs.filter(granted_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.status == "active":
        qs = qs.filter(revocation__isnull=True)
    elif filters.status == "revoked":
        qs = qs.filter(revocation__isnull=False)
    return qs


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def award_cursor(award: Award) -> str:
    """The keyset position of ``award`` in the list order: ``<µs since epoch>.<id>``."""
    return f"{(award.granted_at - EPOCH) // timedelta(microseconds=1)}.{award.pk}"


def _cursor_parse(cursor: str) -> tuple[datetime, int] | None:
    # Anything unreadable or out of range (a time outside years 1..9999, an id beyond the
    # database's integers) is no cursor: the list starts at the top instead of failing.
    if len(cursor) > 60:
        return None
    try:
        micros, pk = (int(part) for part in cursor.split("."))
        at = EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        return None
    if not 0 <= pk < 2**63:
        return None
    return at, pk


@dataclass(frozen=True)
class AwardPage:
    """One page of the award list and where the neighbouring pages start."""

    awards: list[Award]
    total: int
    newer: str | None  # cursor for the previous (newer) page
    older: str | None  # cursor for the next (older) page


def award_list_page(
    *, filters: AwardFilters, before: str = "", after: str = "", size: int = 50
) -> AwardPage:
    """A page of ``award_list`` by keyset: awards older than ``before`` or newer than
    ``after`` (cursors from ``award_cursor``), ``size`` at most, newest first.

    Keyset pagination reads one index range per page, so the thousandth page is as fast as
    the first (an OFFSET would read and discard every row before it). An unreadable cursor
    means the first page. Two queries: the page and the total count.
    """
    qs = _with_fingerprint(award_list(filters=filters))
    position = _cursor_parse(after) if after else None
    if position is not None:
        at, pk = position
        # The plain ``granted_at >= at`` bound lets PostgreSQL start the index scan at the
        # cursor; the OR settles ties between awards granted in the same microsecond.
        newer = list(
            qs.filter(granted_at__gte=at)
            .filter(Q(granted_at__gt=at) | Q(pk__gt=pk))
            .order_by("granted_at", "id")[: size + 1]
        )
        if len(newer) <= size:
            # Back at the top: show the first page itself, with its usual boundaries.
            return award_list_page(filters=filters, size=size)
        awards, has_newer, has_older = newer[:size][::-1], True, True
    else:
        position = _cursor_parse(before) if before else None
        if position is not None:
            at, pk = position
            qs = qs.filter(granted_at__lte=at).filter(Q(granted_at__lt=at) | Q(pk__lt=pk))
        older = list(qs[: size + 1])
        has_older, awards = len(older) > size, older[:size]
        has_newer = position is not None
    return AwardPage(
        awards=awards,
        total=award_list_count(
            filters=filters,
            fingerprint=(awards[0].ledger_award or 0, awards[0].ledger_revocation or 0)
            if awards
            else None,
        ),
        newer=award_cursor(awards[0]) if awards and has_newer else None,
        older=award_cursor(awards[-1]) if awards and has_older else None,
    )


def award_list_count(*, filters: AwardFilters, fingerprint: tuple[int, int] | None) -> int:
    """How many awards match ``filters``; cached per filter and ``fingerprint`` (from
    ``_with_fingerprint``).

    Counting reads every matching index entry (all 100,000 awards when nothing is
    filtered), so the count is cached under the filters and the ledger's fingerprint: the
    newest award id and the newest revocation id (awards and revocations are only ever
    added, never edited or deleted). Any grant or revocation moves the fingerprint, so a
    new key is counted afresh. The timeout bounds the one case the fingerprint misses — a
    transaction with a lower id committing after a higher one was counted.
    """
    if fingerprint is None:  # an empty page past the end: nothing to key the count on
        return award_list(filters=filters).count()
    parts = repr((astuple(_filter_key(filters)), fingerprint))
    key = "staff:award-count:" + hashlib.sha256(parts.encode()).hexdigest()
    total = cache.get(key)
    if total is None:
        total = award_list(filters=filters).count()
        cache.set(key, total, timeout=COUNT_CACHE_S)
    return total


def _filter_key(filters: AwardFilters) -> AwardFilters:
    # Members by id: the user objects themselves are not a stable cache key.
    return AwardFilters(
        member=getattr(filters.member, "pk", None),
        category=filters.category,
        granter=getattr(filters.granter, "pk", None),
        date_from=filters.date_from,
        date_to=filters.date_to,
        status=filters.status,
    )


def _with_fingerprint(qs: QuerySet[Award]) -> QuerySet[Award]:
    """``qs`` with the ledger's fingerprint on every row: the newest award id and the newest
    revocation id (uncorrelated subqueries: PostgreSQL runs each once, as an index lookup),
    so the page's own query brings what the count's cache key needs."""
    newest_award = Award.objects.order_by("-id").values("id")[:1]
    newest_revocation = AwardRevocation.objects.order_by("-id").values("id")[:1]
    return qs.annotate(
        ledger_award=Subquery(newest_award, output_field=BigIntegerField()),
        ledger_revocation=Subquery(newest_revocation, output_field=BigIntegerField()),
    )


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
