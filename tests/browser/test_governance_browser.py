"""Four-eyes approval clicked through: a big grant is requested, a second staff member
approves it, and the member's profile shows the new total and tier."""

import pytest
from django.contrib.auth.models import Permission

from awards.models import Award, AwardRequest
from scoring.models import UserScore
from tests.browser.conftest import login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def staff(username, *codenames):
    user = UserFactory(username=username, staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_request_then_second_staff_member_approves_and_profile_updates(
    browser_page, browser_errors, settings
):
    settings.AWARD_APPROVAL_THRESHOLD = 10_000
    settings.AWARD_GRANTER_BUDGET = 50_000
    page = browser_page
    requester = staff("marsh_clerk", "add_award", "view_award")
    approver = staff("fen_warden", "approve_award", "view_award", "add_award")
    UserFactory(username="toadlet")

    # The first staff member grants 25,000 points: above the threshold, so a request.
    login(page, requester)
    page.goto("/staff/awards/new")
    assert "50,000" in page.locator("#grant-budget").inner_text()
    page.get_by_label("Member", exact=True).fill("toadlet")
    page.get_by_label("Points", exact=True).fill("25000")
    page.get_by_label("Reason", exact=True).fill("Ran the spring swamp summit")
    page.get_by_role("button", name="Grant award").click()
    status = page.locator("#grant-form p.msg[role='status']")
    status.wait_for()
    assert "Sent for approval" in status.inner_text()
    assert Award.objects.count() == 0
    request = AwardRequest.objects.get()

    # The requester sees the request but no approve button for it.
    page.goto("/staff/awards/requests/")
    assert page.locator(f"#request-{request.pk}").count() == 1
    assert page.get_by_role("button", name="Approve").count() == 0

    # A second staff member approves it from the list, without a page load.
    page.context.clear_cookies()
    login(page, approver)
    page.goto("/staff/")
    page.locator("#pending-requests-heading").wait_for()  # the governance panel loaded
    assert "toadlet" in page.locator("#governance").inner_text()
    page.goto("/staff/awards/requests/")
    row = page.locator(f"#request-{request.pk}")
    assert "25,000" in row.inner_text()
    assert "Murk Lurker" in row.inner_text()  # the preview: 0 → 25,000 reaches tier 2
    row.get_by_role("button", name="Approve").click()
    page.locator(f"#request-{request.pk} [role='status']").wait_for()
    assert "Approved" in page.locator(f"#request-{request.pk}").inner_text()

    award = Award.objects.get()
    assert (award.points, award.granted_by, award.recipient.username) == (
        25_000,
        requester,
        "toadlet",
    )
    score = UserScore.objects.get(member__username="toadlet")
    assert (score.total_score, score.tier) == (25_000, 2)

    # The member's public profile shows the award, the total and the tier.
    page.goto("/u/toadlet/")
    body = page.locator("body").inner_text()
    assert "25,000" in body
    assert "Murk Lurker" in body
    assert "Ran the spring swamp summit" in body
    assert browser_errors == []
