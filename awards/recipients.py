"""Recipients of grants: members looked up by username, their current totals, and what a
grant of some points would do to a member's total and tier (the grant form's preview and the
bulk dry run's tier impacts share ``GrantPreview``). A fixed number of queries per call."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from scoring.models import MemberMetrics, UserScore
from scoring.tiers import Tier, tier_for_total

if TYPE_CHECKING:
    from django.contrib.auth.models import User as AuthUser

User = get_user_model()


@dataclass(frozen=True)
class GrantPreview:
    """What granting some points to a member would do to their total and tier: the grant
    form's preview, an award request's approval preview, a bulk file's tier impacts."""

    username: str
    current_total: int
    new_total: int
    current_tier: Tier
    new_tier: Tier

    @property
    def tier_changes(self) -> bool:
        """True when the grant moves the member into another tier."""
        return self.new_tier.ordinal != self.current_tier.ordinal


def grant_preview_from_total(*, username: str, current_total: int, points: int) -> GrantPreview:
    """The preview of ``points`` more for a member whose current total is known."""
    new_total = current_total + points
    return GrantPreview(
        username=username,
        current_total=current_total,
        new_total=new_total,
        current_tier=tier_for_total(current_total),
        new_tier=tier_for_total(new_total),
    )


def grant_preview(*, member: "AuthUser", points: int) -> GrantPreview:
    """The member's current total (as last computed) and the total after ``points`` more."""
    current = member_current_total(member=member)
    return grant_preview_from_total(username=member.username, current_total=current, points=points)


def member_current_total(*, member: "AuthUser") -> int:
    """The member's last computed total, or their award points if never scored."""
    score = UserScore.objects.filter(member=member).values_list("total_score", flat=True).first()
    if score is not None:
        return score
    points = (
        MemberMetrics.objects.filter(member=member).values_list("award_points", flat=True).first()
    )
    return points or 0


def totals_for_members(*, member_ids: Iterable[int]) -> dict[int, int]:
    """Current totals for many members in one query (members never scored count 0)."""
    ids = list(member_ids)
    totals = dict.fromkeys(ids, 0)
    totals.update(
        UserScore.objects.filter(member_id__in=ids).values_list("member_id", "total_score")
    )
    return totals


def usernames_to_members(*, usernames: Iterable[str]) -> dict[str, "AuthUser"]:
    """Members keyed by the username as given, in one query (two when some need case folding).

    An exact match wins; a name typed in another case matches when only one member has it
    in any case (Django usernames are case-sensitive, so "Bob" and "bob" may both exist).
    Names with no member are absent from the result.
    """
    names = {u for u in usernames if u}
    found: dict[str, AuthUser] = {u.username: u for u in User.objects.filter(username__in=names)}
    missing = {n for n in names if n not in found}
    if missing:
        candidates: dict[str, list] = {}
        lowered = {n.lower() for n in missing}
        for user in User.objects.annotate(lname=Lower("username")).filter(lname__in=lowered):
            candidates.setdefault(user.lname, []).append(user)
        for name in missing:
            users = candidates.get(name.lower(), [])
            if len(users) == 1:
                found[name] = users[0]
    return found


def member_by_username(*, username: str) -> "AuthUser | None":
    """The member with this username (exact, else the only case-insensitive match), or None."""
    return usernames_to_members(usernames=[username]).get(username)
