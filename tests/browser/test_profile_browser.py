"""A member's walk: leaderboard → profile → "load more" award history, in real Chromium.

Also saves the screenshots in docs/screenshots/ used by the documentation.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.tiers import tier_for_total, tiers_all
from tests.browser.conftest import screenshot
from tests.factories import (
    AwardFactory,
    AwardRevocationFactory,
    MemberMetricsFactory,
    ScoreHistoryFactory,
    TierBadgeClaimFactory,
    UserFactory,
    UserScoreFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def swamp_data(settings):
    """A board of members; "marshking" has history, badges, activity and 30 awards."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    now = timezone.now()
    for i in range(12):
        total = 5_000 + i * 7_919
        member = UserFactory(username=f"operative{i:02d}")
        UserScoreFactory(member=member, activity_score=total, tier=tier_for_total(total).ordinal)
    king = UserFactory(username="marshking")
    for i, (days, total) in enumerate([(300, 12_000), (200, 48_000), (90, 71_000), (20, 160_000)]):
        ScoreHistoryFactory(
            member=king, recorded_at=now - timedelta(days=days, hours=i), total_score=total
        )
    awards = []
    for i in range(30):
        awards.append(
            AwardFactory(
                recipient=king,
                points=100 + i,
                reason=f"Guided newcomers through the bog, week {30 - i}",
                category=["community", "content", "event", "bug_report"][i % 4],
                public=i % 7 != 3,
                staff_note="internal: verified by the wardens",
                granted_at=now - timedelta(days=i * 3),
            )
        )
    AwardRevocationFactory(award=awards[1])
    counted = sum(a.points for a in awards) - awards[1].points
    UserScoreFactory(
        member=king,
        activity_score=160_000 - counted,
        award_points=counted,
        tier=tier_for_total(160_000).ordinal,
        streak_days=9,
        active_days=120,
    )
    today = now.date()
    MemberMetricsFactory(
        member=king,
        active_dates=sorted(
            str(today - timedelta(days=d)) for d in range(0, 365) if d % 3 == 0 or d < 9
        ),
    )
    for tier in tiers_all()[: tier_for_total(160_000).ordinal]:
        TierBadgeClaimFactory(
            member=king,
            tier=tier.ordinal,
            claimed_at=now - timedelta(days=300 - tier.ordinal * 40),
            total_at_claim=tier.floor + 1_234,
        )
    return king


def test_leaderboard_to_profile_and_load_more_history(
    live_server, swamp_data, browser_page, browser_errors
):
    page = browser_page
    page.goto("/leaderboard/")
    rows = page.locator("table.board tbody tr")
    assert rows.count() == 13
    assert rows.first.locator("td").nth(1).inner_text() == "marshking"
    screenshot(page, "leaderboard")

    page.get_by_role("link", name="marshking").click()
    page.wait_for_url(f"{live_server.url}/u/marshking/")
    assert page.get_by_role("heading", level=1).inner_text() == "marshking"
    assert page.locator('[data-part="total"]').inner_text() == "= 160,000"
    assert page.locator("svg.heatmap rect.hm-on").count() > 100
    assert page.locator("svg.chart polyline.score-line").count() == 1
    history = page.locator("tr.award-row")
    assert history.count() == 20
    profile_png = screenshot(page, "profile")

    page.get_by_role("link", name="Load more").click()
    history.nth(29).wait_for()
    assert history.count() == 30
    assert page.get_by_role("link", name="Load more").count() == 0
    # htmx swapped the rows in place: still the first page's address, no navigation.
    assert page.url == f"{live_server.url}/u/marshking/"
    assert "Guided newcomers through the bog, week 1" in history.nth(29).inner_text()
    text = page.locator("#award-history").inner_text()
    assert "Private award" in text
    assert "internal: verified" not in text
    assert page.locator("tr.award-row.is-revoked").count() == 1
    # Nothing blocked by the content security policy, no script errors.
    assert browser_errors == []
    assert profile_png.stat().st_size > 10_000
