"""Award points in ``MemberMetrics``: the one writer of ``award_points``.

The awards app grants and revokes; it asks this service to move the points and never
writes scoring's tables itself. The locks taken here follow the project's lock order,
documented once in ``scoring.scores`` (and docs/pipeline.md): ``MemberMetrics`` rows in
member id order, before any ``UserScore`` row.
"""

from collections.abc import Mapping

from scoring.models import MemberMetrics
from swampclub.dialect import add_from_deltas


def metrics_add_award_points(*, deltas: Mapping[int, int]) -> None:
    """Add each delta to its member's ``MemberMetrics.award_points`` (creating missing rows).

    Set-based: one insert of missing rows, one ``SELECT ... FOR UPDATE`` in member order
    (so overlapping bulk grants lock in the same order), one ``UPDATE ... FROM`` the deltas.
    The addition is done by the database under the row lock, so concurrent grants to one
    member never lose an update. Call inside the caller's transaction.
    """
    changes = sorted((member_id, delta) for member_id, delta in deltas.items() if delta)
    if not changes:
        return
    member_ids = [member_id for member_id, _ in changes]
    # A member's first award may come before their first event: the row must exist.
    MemberMetrics.objects.bulk_create(
        [MemberMetrics(member_id=member_id) for member_id in member_ids], ignore_conflicts=True
    )
    list(
        MemberMetrics.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )
    add_from_deltas(
        MemberMetrics, key="member", column="award_points", deltas=changes, touch="updated_at"
    )
