"""Member profiles: breakdown, award history visibility, load more, charts, 404s, budgets."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from awards.models import Award
from scoring.tiers import tier_for_total
from tests.factories import (
    AwardFactory,
    AwardRevocationFactory,
    MemberMetricsFactory,
    ScoreHistoryFactory,
    TierBadgeClaimFactory,
    UserFactory,
    UserScoreFactory,
)

pytestmark = pytest.mark.django_db

STAFF_NOTE = "INTERNAL-NOTE-do-not-show"


def breakdown_numbers(html):
    """The activity, awards and total figures as rendered on the profile."""
    parts = dict(re.findall(r'data-part="(\w+)">[+= ]*([\d,]+)<', html))
    return {name: int(value.replace(",", "")) for name, value in parts.items()}


def score_from_ledger(member, activity):
    """A UserScore consistent with the member's awards: award points = unrevoked sum."""
    counted = sum(a.points for a in Award.objects.filter(recipient=member, revocation__isnull=True))
    return UserScoreFactory(
        member=member,
        activity_score=activity,
        award_points=counted,
        tier=tier_for_total(activity + counted).ordinal,
    )


# --- Breakdown ------------------------------------------------------------------------------


def test_breakdown_sums_to_total_without_awards(client):
    member = UserFactory(username="plain")
    UserScoreFactory(member=member, activity_score=12_345)
    numbers = breakdown_numbers(client.get("/u/plain/").content.decode())
    assert numbers == {"activity": 12_345, "awards": 0, "total": 12_345}


def test_breakdown_sums_to_total_with_awards_and_revocations(client):
    member = UserFactory(username="decorated")
    AwardFactory(recipient=member, points=500)
    AwardFactory(recipient=member, points=2_000, public=False)
    AwardRevocationFactory(award=AwardFactory(recipient=member, points=9_999))
    score_from_ledger(member, activity=30_001)
    html = client.get("/u/decorated/").content.decode()
    numbers = breakdown_numbers(html)
    assert numbers == {"activity": 30_001, "awards": 2_500, "total": 32_501}
    assert numbers["activity"] + numbers["awards"] == numbers["total"]
    assert "3 granted, 1 revoked" in html
    # The total decides the tier badge shown: 32,501 is tier 2.
    assert "tier-badge tier-2" in html
    assert "Murk Lurker" in html


def test_member_without_a_score_yet_shows_zeros(client):
    UserFactory(username="fresh")
    html = client.get("/u/fresh/").content.decode()
    assert breakdown_numbers(html) == {"activity": 0, "awards": 0, "total": 0}
    assert "Sludge Whelp" in html
    assert "No score computed yet." in html
    assert "No score history yet." in html
    assert "No awards yet." in html


# --- Award visibility -----------------------------------------------------------------------


@pytest.fixture
def awarded(db):
    """A member with a public, a private, and a revoked private award (all with notes)."""
    member = UserFactory(username="bogwalker")
    now = timezone.now()
    AwardFactory(
        recipient=member,
        points=111,
        reason="Wrote the marsh survival guide",
        category="content",
        staff_note=STAFF_NOTE,
        granted_at=now - timedelta(days=3),
    )
    AwardFactory(
        recipient=member,
        points=222,
        reason="Reported the secret exploit quietly",
        category="bug_report",
        public=False,
        staff_note=STAFF_NOTE,
        granted_at=now - timedelta(days=2),
    )
    revoked = AwardFactory(
        recipient=member,
        points=333,
        reason="Duplicate prize for the frog race",
        category="event",
        public=False,
        staff_note=STAFF_NOTE,
        granted_at=now - timedelta(days=1),
    )
    AwardRevocationFactory(award=revoked, reason="Already rewarded in March")
    score_from_ledger(member, activity=1_000)
    return member


def test_private_award_shows_only_points_and_date_to_others(client, awarded):
    for viewer in (None, UserFactory(username="nosy"), UserFactory(username="boss", staff=True)):
        if viewer:
            client.force_login(viewer)
        html = client.get("/u/bogwalker/").content.decode()
        assert "Wrote the marsh survival guide" in html  # public: reason shown
        assert "Reported the secret exploit quietly" not in html
        assert "Bug report" not in html
        assert "+222" in html
        assert "Private award" in html
        assert STAFF_NOTE not in html
        assert "Already rewarded in March" not in html  # revocation reasons: owner only


def test_owner_sees_their_private_reasons(client, awarded):
    client.force_login(awarded)
    html = client.get("/u/bogwalker/").content.decode()
    assert "Reported the secret exploit quietly" in html
    assert "Bug report" in html
    assert "Duplicate prize for the frog race" in html
    assert "Already rewarded in March" in html
    assert STAFF_NOTE not in html


def test_revoked_award_is_struck_through_and_not_counted(client, awarded):
    html = client.get("/u/bogwalker/").content.decode()
    rows = re.findall(r'<tr class="award-row( is-revoked)?">(.*?)</tr>', html, re.S)
    assert len(rows) == 3
    revoked = [body for flag, body in rows if flag]
    assert len(revoked) == 1
    assert '<td class="num revoked">+333</td>' in revoked[0]
    assert "Revoked " in revoked[0]
    assert breakdown_numbers(html)["awards"] == 333  # 111 + 222 count; 333 does not


def test_staff_note_never_reaches_the_fragment(client, awarded):
    client.force_login(awarded)
    response = client.get("/u/bogwalker/?page=1", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert STAFF_NOTE not in response.content.decode()


def test_award_json_hides_private_reasons_and_staff_notes(client, awarded):
    response = client.get("/api/u/bogwalker/awards")
    if response.status_code == 404 and response.headers["Content-Type"].startswith("text/html"):
        pytest.fail("GET /api/u/<username>/awards is not routed")
    body = response.json()
    assert STAFF_NOTE not in response.content.decode()
    by_points = {a["points"]: a for a in body["awards"]}
    assert by_points[111]["reason"] == "Wrote the marsh survival guide"
    assert by_points[222]["reason"] is None
    assert by_points[333]["revoked"] is True
    assert [a["points"] for a in body["awards"]] == [333, 222, 111]  # newest first


# --- Load more ------------------------------------------------------------------------------


def test_load_more_pages_through_every_award_once(client):
    member = UserFactory(username="hoarder")
    now = timezone.now()
    for i in range(45):
        AwardFactory(recipient=member, points=i + 1, granted_at=now - timedelta(hours=i))
    seen = []
    html = client.get("/u/hoarder/").content.decode()
    page = 1
    while True:
        seen += [int(p) for p in re.findall(r'<td class="num">\+(\d+)</td>', html)]
        more = re.search(r'hx-get="\?page=(\d+)"', html)
        if not more:
            break
        page = int(more.group(1))
        response = client.get(f"/u/hoarder/?page={page}", headers={"HX-Request": "true"})
        html = response.content.decode()
        assert "<html" not in html  # a fragment of rows, not a page
        assert html.lstrip().startswith("<tr")
        assert "HX-Request" in response.get("Vary", "")
    assert page == 3
    assert seen == list(range(1, 46))  # newest (1 hour ago = 1 point) first, each once


def test_load_more_works_without_javascript(client):
    member = UserFactory(username="nojs")
    for i in range(25):
        AwardFactory(recipient=member, points=i + 1)
    first = client.get("/u/nojs/").content.decode()
    assert 'href="?page=2#award-history"' in first
    second = client.get("/u/nojs/?page=2").content.decode()
    assert "<html" in second
    assert "Newest awards" in second
    assert len(re.findall(r'class="award-row', second)) == 5
    assert "hx-get=" not in second


# --- Heatmap, chart, badges ------------------------------------------------------------------


def test_heatmap_marks_active_days_of_the_last_year(client):
    member = UserFactory(username="busy")
    today = timezone.now().date()
    recent = [today - timedelta(days=d) for d in (0, 1, 2, 40, 364)]
    old = [today - timedelta(days=365), today - timedelta(days=800)]
    MemberMetricsFactory(member=member, active_dates=sorted(str(d) for d in recent + old))
    UserScoreFactory(member=member, activity_score=10, streak_days=3, active_days=7)
    html = client.get("/u/busy/").content.decode()
    marked = re.findall(r'class="hm hm-on"><title>([\d-]+): active</title>', html)
    assert sorted(marked) == sorted(str(d) for d in recent)
    assert len(re.findall(r'<rect [^>]*class="hm', html)) == 365
    assert "5 active days between" in html
    assert "3 days" in html  # streak


def test_score_chart_is_a_server_rendered_polyline(client):
    member = UserFactory(username="climber")
    now = timezone.now()
    ScoreHistoryFactory(member=member, recorded_at=now - timedelta(days=500), total_score=100)
    morning = (now - timedelta(days=100)).replace(hour=8)
    for when, total in [
        (now - timedelta(days=200), 300),
        (morning, 900),
        (morning + timedelta(hours=9), 950),  # same day: the chart keeps the day's last total
        (now - timedelta(days=10), 2_000),
    ]:
        ScoreHistoryFactory(member=member, recorded_at=when, total_score=total)
    UserScoreFactory(member=member, activity_score=2_000)
    html = client.get("/u/climber/").content.decode()
    points = re.search(r'<polyline points="([^"]+)" class="score-line"', html).group(1)
    coords = [tuple(map(float, p.split(","))) for p in points.split()]
    # Baseline at the left edge, then a hold-and-step per day with a change, to the right edge.
    assert coords[0][0] == 64
    assert coords[-1][0] == 708
    ys = sorted({y for _, y in coords}, reverse=True)
    assert len(ys) == 4  # 100, 300, 950 (the day's last value, not 900), 2,000
    assert "from 100 on" in html
    assert "to 2,000 on" in html
    assert "<script" not in html.split("</head>")[1]  # no charting script


def test_tier_badges_claimed_are_listed_with_dates(client):
    member = UserFactory(username="badged")
    UserScoreFactory(member=member, activity_score=70_000, tier=3)
    for tier, day in [(1, "2026-01-02"), (2, "2026-03-04"), (3, "2026-05-06")]:
        TierBadgeClaimFactory(
            member=member,
            tier=tier,
            claimed_at=timezone.datetime.fromisoformat(f"{day}T12:00:00+00:00"),
            total_at_claim=tier * 25_000,
        )
    html = client.get("/u/badged/").content.decode()
    section = html.split('id="badges-h"')[1].split("</section>")[0]
    assert re.findall(r"tier-badge tier-(\d+)", section) == ["1", "2", "3"]
    assert "claimed 2026-03-04 at 50,000" in section


def test_pages_have_no_inline_styles(client, awarded):
    html = client.get("/u/bogwalker/").content.decode()
    assert not re.search(r"\sstyle=", html)
    board = client.get("/leaderboard/").content.decode()
    assert not re.search(r"\sstyle=", board)


# --- 404s and query budgets ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/u/nobody/", "/u/ghost/?page=0", "/u/ghost/?page=x"])
def test_unknown_member_or_page_is_404(client, path):
    UserFactory(username="ghost")
    assert client.get(path).status_code == 404


def test_deactivated_member_is_404(client):
    UserFactory(username="gone", is_active=False)
    assert client.get("/u/gone/").status_code == 404


def test_profile_query_count_does_not_grow_with_history_or_awards(client):
    member = UserFactory(username="veteran")
    viewer = UserFactory(username="viewer")
    client.force_login(viewer)
    UserScoreFactory(member=member, activity_score=5_000)
    MemberMetricsFactory(member=member, active_dates=["2026-01-01"])
    TierBadgeClaimFactory(member=member)
    now = timezone.now()

    def add(n):
        for i in range(n):
            ScoreHistoryFactory(
                member=member, recorded_at=now - timedelta(hours=i * 40), total_score=i
            )
            AwardFactory(recipient=member, points=1, granted_at=now - timedelta(hours=i))
        AwardRevocationFactory(award=AwardFactory(recipient=member))

    def count(path, **kwargs):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path, **kwargs).status_code == 200
        return len(ctx)

    add(5)
    small = (count("/u/veteran/"), count("/u/veteran/?page=1", headers={"HX-Request": "true"}))
    add(195)
    large = (count("/u/veteran/"), count("/u/veteran/?page=2", headers={"HX-Request": "true"}))
    assert small == large
    # session, viewer, member+score+metrics, awards page, the explanation's awards (which
    # also give the award counts) and rules version, claims, chart baseline, chart rows;
    # one more here because these factory awards disagree with the score's award points,
    # so the explanation re-reads the score once.
    assert large[0] <= 10
    assert large[1] <= 4


def test_award_text_is_escaped_in_the_history(client):
    member = UserFactory(username="quagmire")
    award = AwardFactory(recipient=member, points=1_500, reason="<script>alert(1)</script> & co")
    AwardRevocationFactory(award=award, reason="<b>dup</b>")
    client.force_login(member)  # the owner also sees the revocation reason
    html = client.get("/u/quagmire/").content.decode()
    assert "<script>alert" not in html
    assert "<b>dup" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert '<span class="muted">&lt;b&gt;dup&lt;/b&gt;</span>' in html
    assert '<td class="num revoked">+1,500</td>' in html
    granted = award.granted_at.isoformat()
    assert f'<time datetime="{granted}">{award.granted_at:%Y-%m-%d}</time>' in html


def test_a_member_scored_once_gets_a_dot_and_an_honest_label(client):
    member = UserFactory(username="newt")
    recorded = timezone.now() - timedelta(minutes=3)
    ScoreHistoryFactory(member=member, recorded_at=recorded, total_score=1_755)
    UserScoreFactory(member=member, activity_score=1_755)
    html = client.get("/u/newt/").content.decode()
    day = f"{recorded:%Y-%m-%d}"
    assert f"First scored on {day}: 1,755" in html
    assert f'aria-label="Total score first scored on {day}: 1,755; one recorded point"' in html
    assert re.search(r'<circle cx="[\d.]+" cy="[\d.]+" r="5" class="score-dot"/>', html)
    # Never the claim that the member had today's total a year ago.
    year_ago = f"{timezone.now() - timedelta(days=365):%Y-%m-%d}"
    assert f"from 1,755 on {year_ago}" not in html
