"""Every page in real Chromium: it fits a 360 px phone without sideways scrolling, axe-core
finds no accessibility violation (WCAG 2.1 A/AA and best practices) on a phone or a desktop,
and nothing is logged to the console (checked by the ``browser_session`` fixture)."""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import Permission
from django.utils import timezone

from awards.models import Award, BulkGrantJob
from awards.services import award_grant
from scoring.apikeys import api_key_create
from scoring.tiers import tier_for_total
from tests.browser.conftest import login
from tests.factories import (
    AwardFactory,
    MemberMetricsFactory,
    ScoreHistoryFactory,
    TierBadgeClaimFactory,
    UserFactory,
    UserScoreFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# axe-core ships inside the package (axe.min.js): nothing is downloaded at run time.
AXE = Axe()


@pytest.fixture
def site(settings):
    """A staff member with every staff right, and a member with a long name, a year of
    history, badges, awards (one private, long reasons) and an API key."""
    now = timezone.now()
    staff = UserFactory(username="warden", staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_award", "add_awardrevocation", "view_award", "add_apikey"]
        )
    )
    member = UserFactory(username="marshking-of-the-long-name")
    for i in range(8):
        other = UserFactory(username=f"operative{i:02d}")
        total = 5_000 + i * 7_919
        UserScoreFactory(member=other, activity_score=total, tier=tier_for_total(total).ordinal)
    for days, total in [(300, 12_000), (200, 48_000), (90, 71_000), (20, 160_000)]:
        ScoreHistoryFactory(
            member=member, recorded_at=now - timedelta(days=days), total_score=total
        )
    for i in range(6):
        AwardFactory(
            recipient=member,
            points=1_000 + i,
            reason=f"Guided newcomers through the whole of the northern bog, week {i}",
            category=["community", "content", "event"][i % 3],
            public=i != 2,
            granted_by=staff,
            granted_at=now - timedelta(days=i * 5),
        )
    award_points = sum(Award.objects.filter(recipient=member).values_list("points", flat=True))
    UserScoreFactory(
        member=member,
        activity_score=160_000 - award_points,
        award_points=award_points,
        tier=tier_for_total(160_000).ordinal,
        streak_days=4,
        active_days=90,
    )
    MemberMetricsFactory(
        member=member,
        award_points=award_points,
        active_dates=[str(now.date() - timedelta(days=d)) for d in range(0, 365, 4)],
    )
    for ordinal in range(1, tier_for_total(160_000).ordinal + 1):
        TierBadgeClaimFactory(member=member, tier=ordinal, total_at_claim=ordinal * 20_000)
    award_grant(
        recipient=UserFactory(username="heron"),
        points=50,
        reason="Spotted a rare heron",
        idempotency_key="heron-1",
        granted_by=staff,
        source="form",
    )
    api_key_create(owner=member, scopes=["ingest"], name="a laptop in the swamp")
    return {"staff": staff, "member": member}


def _pages(site) -> list[str]:
    member = site["member"].username
    pages = [
        "/leaderboard/",
        "/leaderboard/?window=7d",
        f"/u/{member}/",
        "/accounts/login/",
        "/staff/",
        "/staff/awards/",
        "/staff/awards/new",
        "/staff/awards/bulk",
        f"/staff/members/{member}/",
        "/staff/api-keys/",
    ]
    job = BulkGrantJob.objects.first()
    if job is not None:
        pages.append(f"/staff/awards/bulk/{job.token}")
    return pages


def _axe_violations(page) -> list[str]:
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone-360", "desktop"])
def test_every_page_fits_the_screen_and_passes_axe(browser_page, site, viewport):
    page = browser_page
    page.set_viewport_size(viewport)
    login(page, site["staff"])
    problems = {}
    for url in _pages(site):
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("load")
        found = []
        # No sideways scroll: the document is no wider than the viewport (a wide table may
        # scroll inside its card, never the page).
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
        )
        if max(widths[:2]) > widths[2]:
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5)
                    .filter(e => !e.closest('.scroll-x, .chart-scroll, .heatmap-scroll'))
                    .slice(0, 5).map(e => e.tagName + '.' + e.className)"""
            )
            found.append(f"page is {max(widths[:2])} px wide on a {widths[2]} px screen: {wide}")
        found += _axe_violations(page)
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{url}: {found}" for url, found in problems.items())
