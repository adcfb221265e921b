"""Leaderboards: order, ranks, window gains, keyset pagination, staff exclusion, JSON."""

import base64
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members import leaderboard
from members.leaderboard import pages as leaderboard_pages
from scoring.models import UserScore
from tests.factories import ScoreHistoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def board_usernames(page):
    return [entry.username for entry in page.entries]


def api_walk(client, window, *, between_pages=None):
    """Follow next_cursor through the JSON board; returns every entry in walk order."""
    entries, cursor, pages = [], None, 0
    while True:
        params = {"window": window} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/leaderboard", params).json()
        entries.extend(body["entries"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return entries
        if between_pages:
            between_pages(pages)
        assert pages < 100


# --- Order and ranks ------------------------------------------------------------------------


def test_all_time_board_orders_by_total_then_username(make_member):
    for name, total in [("carol", 300), ("bob", 500), ("alice", 300), ("dave", 10)]:
        make_member(name, total)
    page = leaderboard.leaderboard_page(window="all", now=timezone.now())
    assert board_usernames(page) == ["bob", "alice", "carol", "dave"]
    # Competition ranks: the tie shares rank 2 and the next rank is 4.
    assert [e.rank for e in page.entries] == [1, 2, 2, 4]
    assert [e.position for e in page.entries] == [1, 2, 3, 4]
    assert page.entries[0].gain is None


def test_ties_are_stable_across_requests_and_page_boundaries(client, make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 2
    for name in ["eve", "ann", "dan", "bea", "cid"]:
        make_member(name, 1000)
    once = api_walk(client, "all")
    twice = api_walk(client, "all")
    assert [e["username"] for e in once] == ["ann", "bea", "cid", "dan", "eve"]
    assert once == twice
    assert {e["rank"] for e in once} == {1}


def test_tier_and_profile_link_on_the_page(client, make_member):
    make_member("reedy", 65_000)
    body = client.get("/leaderboard/").content.decode()
    assert 'href="/u/reedy/"' in body
    assert "tier-3" in body
    assert "Mire Walker" in body
    assert "65,000" in body


# --- Window gains ---------------------------------------------------------------------------


def test_dormant_member_gains_exactly_this_weeks_award(make_member):
    now = timezone.now()
    make_member(
        "sleeper",
        1500,
        history=[
            (now - timedelta(days=500), 900),
            (now - timedelta(days=400), 1000),
            (now - timedelta(days=2), 1500),
        ],
    )
    for window in ("7d", "30d"):
        page = leaderboard.leaderboard_page(window=window, now=now)
        assert [(e.username, e.gain, e.total_score) for e in page.entries] == [
            ("sleeper", 500, 1500)
        ]


def test_member_without_history_before_the_window_gains_their_whole_total(make_member):
    now = timezone.now()
    make_member(
        "newbie", 300, history=[(now - timedelta(days=3), 120), (now - timedelta(days=1), 300)]
    )
    page = leaderboard.leaderboard_page(window="7d", now=now)
    assert page.entries[0].gain == 300


def test_decayed_member_has_a_negative_gain_and_sorts_last(client, make_member):
    now = timezone.now()
    make_member(
        "fading", 1800, history=[(now - timedelta(days=10), 2000), (now - timedelta(days=1), 1800)]
    )
    make_member("steady", 700, history=[(now - timedelta(days=90), 700)])
    make_member("rising", 50, history=[(now - timedelta(days=1), 50)])
    page = leaderboard.leaderboard_page(window="7d", now=now)
    assert [(e.username, e.gain) for e in page.entries] == [
        ("rising", 50),
        ("steady", 0),
        ("fading", -200),
    ]
    # Over 30 days the decay is older than the gain: baseline 0, so the whole total counts.
    page30 = leaderboard.leaderboard_page(window="30d", now=now)
    assert page30.entries[0].username == "fading"
    assert page30.entries[0].gain == 1800
    body = client.get("/leaderboard/?window=7d").content.decode()
    assert "\u2212200" in body
    assert "+50" in body


def test_history_row_exactly_at_the_window_start_is_the_baseline(make_member):
    now = timezone.now()
    start = leaderboard.leaderboard_window_start(window="7d", now=now)
    assert now - timedelta(days=7, seconds=1) < start <= now - timedelta(days=7)
    make_member(
        "edge",
        900,
        history=[
            (start - timedelta(days=1), 100),
            (start, 400),
            (start + timedelta(microseconds=1), 900),
        ],
    )
    page = leaderboard.leaderboard_page(window="7d", now=now)
    assert page.entries[0].gain == 500


def test_window_ties_are_ordered_by_username(make_member):
    now = timezone.now()
    for name in ["zed", "amy", "kim"]:
        make_member(
            name,
            1000 + len(name),
            history=[
                (now - timedelta(days=60), len(name)),
                (now - timedelta(days=1), 1000 + len(name)),
            ],
        )
    page = leaderboard.leaderboard_page(window="7d", now=now)
    assert [(e.username, e.gain, e.rank) for e in page.entries] == [
        ("amy", 1000, 1),
        ("kim", 1000, 1),
        ("zed", 1000, 1),
    ]


def test_window_cursor_pins_the_window_start(make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 1
    now = timezone.now()
    make_member("one", 10, history=[(now - timedelta(days=1), 10)])
    make_member("two", 5, history=[(now - timedelta(days=1), 5)])
    first = leaderboard.leaderboard_page(window="7d", now=now)
    cursor = leaderboard.Cursor.decode(first.next_cursor, window="7d")
    assert cursor.start == first.window_start
    later = leaderboard.leaderboard_page(
        window="7d", cursor=cursor, now=now + timedelta(minutes=30)
    )
    assert later.window_start == first.window_start
    assert board_usernames(later) == ["two"]


def test_old_or_forged_window_cursors_are_measured_from_the_current_start(make_member):
    now = timezone.now()
    make_member("one", 10, history=[(now - timedelta(days=1), 10)])
    current = leaderboard.leaderboard_window_start(window="7d", now=now)
    for start in (current - timedelta(hours=2), current + timedelta(seconds=5)):
        cursor = leaderboard.Cursor("7d", 999, "a", "after", start)
        page = leaderboard.leaderboard_page(window="7d", cursor=cursor, now=now)
        assert page.window_start == current
        assert board_usernames(page) == ["one"]


# --- Keyset pagination ----------------------------------------------------------------------


def test_keyset_walk_returns_every_member_once_with_contiguous_positions(
    client, make_member, settings
):
    settings.LEADERBOARD_PAGE_SIZE = 4
    for i in range(23):
        make_member(f"m{i:02d}", (i % 5) * 100)  # many ties, some across page boundaries
    entries = api_walk(client, "all")
    names = [e["username"] for e in entries]
    assert sorted(names) == sorted(f"m{i:02d}" for i in range(23))
    assert len(names) == len(set(names))
    expected = sorted(
        UserScore.objects.values_list("total_score", "username"), key=lambda r: (-r[0], r[1])
    )
    assert [(e["total_score"], e["username"]) for e in entries] == expected
    # Competition ranks recomputed from the full order.
    for index, entry in enumerate(entries):
        first_with_score = next(
            i for i, e in enumerate(entries) if e["total_score"] == entry["total_score"]
        )
        assert entry["rank"] == first_with_score + 1, index


def test_keyset_walk_survives_score_changes_between_pages(client, make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 5
    for i in range(30):
        make_member(f"p{i:02d}", 10_000 - i * 100)  # p00 highest ... p29 lowest
    moved = set()

    def churn(pages_read):
        # Between fetches: a member already shown climbs further (stays above the cursor),
        # an unseen member drops (stays below it), and a newcomer appears at the top.
        # None of them crosses the cursor, so each must still be seen exactly once.
        shown_name = f"p{(pages_read - 1) * 5:02d}"
        unseen_name = f"p{30 - pages_read:02d}"
        UserScore.objects.filter(username=shown_name).update(total_score=20_000 + pages_read)
        UserScore.objects.filter(username=unseen_name).update(total_score=1 + pages_read)
        make_member(f"new{pages_read}", 50_000 + pages_read)
        moved.update({shown_name, unseen_name})

    entries = api_walk(client, "all", between_pages=churn)
    names = [e["username"] for e in entries]
    assert len(names) == len(set(names)), "no member is listed twice"
    originals = [f"p{i:02d}" for i in range(30)]
    assert [n for n in names if n in originals and n not in moved] == [
        n for n in originals if n not in moved
    ], "every unchanged member appears once, in order"
    assert moved <= set(names), "members that moved without crossing the cursor are not lost"


def test_next_then_previous_returns_the_same_page(make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 3
    for i in range(10):
        make_member(f"q{i}", 100 - i)
    now = timezone.now()
    first = leaderboard.leaderboard_page(window="all", now=now)
    second = leaderboard.leaderboard_page(
        window="all", cursor=leaderboard.Cursor.decode(first.next_cursor, window="all"), now=now
    )
    assert board_usernames(second) == ["q3", "q4", "q5"]
    assert [e.rank for e in second.entries] == [4, 5, 6]
    back = leaderboard.leaderboard_page(
        window="all", cursor=leaderboard.Cursor.decode(second.prev_cursor, window="all"), now=now
    )
    assert board_usernames(back) == board_usernames(first)
    assert [e.rank for e in back.entries] == [1, 2, 3]
    assert back.prev_cursor is None
    assert first.prev_cursor is None
    last = leaderboard.leaderboard_page(
        window="all",
        cursor=leaderboard.Cursor("all", 92, "q8", "after"),
        now=now,
    )
    assert board_usernames(last) == ["q9"]
    assert last.next_cursor is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's EXPLAIN")
def test_deep_all_time_page_is_an_index_range_scan(make_member):
    for i in range(50):
        make_member(f"r{i:02d}", i * 10)
    cursor = leaderboard.Cursor("all", 200, "r20", "after")
    rows = (
        leaderboard.leaderboard_queryset(start=None)
        .filter(leaderboard_pages._behind(cursor.value, cursor.username))
        .order_by("-board_value", "username")[:51]
    )
    with connection.cursor() as db:
        # With so few rows a sort is cheaper; forbid it to see whether the index can serve.
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_sort = off")
        plan = rows.explain()
    # The index both orders the rows (no Sort node) and bounds the scan at the cursor.
    assert "Index Scan using scoring_score_board_idx" in plan, plan
    assert "Sort" not in plan, plan
    assert re.search(r"Index Cond: \(.*total_score <= 200", plan), plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's EXPLAIN")
def test_staff_exclusion_reads_the_staff_index_not_the_user_table(make_member):
    for i in range(20):
        make_member(f"s{i:02d}", i, staff=i % 10 == 9)
    rows = leaderboard.leaderboard_queryset(start=None).order_by("-board_value", "username")[:5]
    with connection.cursor() as db:
        db.execute("SET LOCAL enable_seqscan = off")
        plan = rows.explain()
    # The anti-join's inner side is the partial index of staff rows, not a user-table scan.
    assert "scoring_user_staff_idx" in plan, plan
    assert [
        e.username for e in leaderboard.leaderboard_page(window="all", now=timezone.now()).entries
    ][:2] == ["s18", "s17"]


# --- Staff exclusion and "where am I" --------------------------------------------------------


def test_staff_accounts_are_excluded_by_default(client, make_member, settings):
    assert settings.LEADERBOARD_EXCLUDE_STAFF is True
    make_member("warden", 99_999, staff=True)
    make_member("frog", 10)
    for window in ("all", "7d", "30d"):
        names = [
            e["username"]
            for e in client.get("/api/leaderboard", {"window": window}).json()["entries"]
        ]
        assert names == ["frog"], window
    settings.LEADERBOARD_EXCLUDE_STAFF = False
    names = [e["username"] for e in client.get("/api/leaderboard").json()["entries"]]
    assert names == ["warden", "frog"]


def test_where_am_i_jumps_to_the_aligned_page_holding_the_member(client, make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 5
    for i in range(20):
        make_member(f"s{i:02d}", 1000 - i)
    me = UserScore.objects.get(username="s12").member  # position 13 → page 3 (11..15)
    client.force_login(me)
    body = client.get("/leaderboard/").content.decode()
    link = re.search(r'href="([^"]+)" class="where-am-i"', body).group(1).replace("&amp;", "&")
    assert link.endswith("#me")
    page = client.get(link.split("#")[0]).content.decode()
    assert re.findall(r'href="/u/(s\d\d)/"', page) == ["s10", "s11", "s12", "s13", "s14"]
    assert 'id="me"' in page
    assert re.search(r'<tr id="me" class="me">\s*<td class="num">13</td>', page)


def test_where_am_i_on_the_first_page_and_for_members_not_on_the_board(client, make_member):
    top = make_member("topdog", 500)
    client.force_login(top)
    assert 'href="/leaderboard/?window=all#me"' in client.get("/leaderboard/").content.decode()
    client.force_login(UserFactory(username="noscore"))
    body = client.get("/leaderboard/").content.decode()
    assert "where-am-i" not in body
    assert "You are not on this board yet." in body
    client.force_login(make_member("boss", 900, staff=True))
    assert "where-am-i" not in client.get("/leaderboard/").content.decode()


def test_where_am_i_works_for_window_boards(make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 2
    now = timezone.now()
    users = [
        make_member(f"w{i}", 100 - i, history=[(now - timedelta(days=1), 100 - i)])
        for i in range(5)
    ]
    cursor_text = leaderboard.leaderboard_cursor_for_member(member=users[4], window="7d", now=now)
    cursor = leaderboard.Cursor.decode(cursor_text, window="7d")
    page = leaderboard.leaderboard_page(window="7d", cursor=cursor, now=now)
    assert board_usernames(page) == ["w4"]
    assert page.entries[0].rank == 5


# --- Bad input and the JSON shape ------------------------------------------------------------


def test_api_shape_for_all_time_and_window_boards(client, make_member):
    now = timezone.now()
    make_member("shape", 25_000, history=[(now - timedelta(days=60), 5_000)])
    body = client.get("/api/leaderboard").json()
    assert body == {
        "window": "all",
        "window_start": None,
        "entries": [
            {
                "rank": 1,
                "username": "shape",
                "total_score": 25_000,
                "tier": {"ordinal": 2, "name": "Murk Lurker"},
            }
        ],
        "next_cursor": None,
        "prev_cursor": None,
    }
    body = client.get("/api/leaderboard?window=30d").json()
    assert body["window"] == "30d"
    assert body["window_start"] is not None
    assert body["entries"][0]["gain"] == 20_000
    assert body["entries"][0]["total_score"] == 25_000


@pytest.mark.parametrize(
    ("query", "field", "api_status"),
    [
        ("window=year", "window", 400),
        ("cursor=not%20a%20cursor", "cursor", 400),  # not base64url: schema-invalid
        ("cursor=not-a-cursor", "cursor", 404),  # base64url, but names no place
        ("cursor=WzFd", "cursor", 404),  # valid base64 of "[1]"
        # A cursor of the all-time board used on the 7-day board.
        (f"window=7d&cursor={leaderboard.Cursor('all', 5, 'x', 'after').encode()}", "cursor", 404),
    ],
)
def test_bad_parameters_answer_4xx_naming_the_field(client, query, field, api_status):
    response = client.get(f"/api/leaderboard?{query}")
    assert response.status_code == api_status
    assert response.json()["field"] == field
    page = client.get(f"/leaderboard/?{query}")
    assert page.status_code == 400
    assert f"<code>{field}</code>" in page.content.decode()


def test_empty_board(client):
    assert client.get("/api/leaderboard").json()["entries"] == []
    assert "No members here" in client.get("/leaderboard/").content.decode()


def test_board_query_count_does_not_grow_with_history(client, make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 3
    now = timezone.now()
    users = [make_member(f"h{i}", 1000 + i) for i in range(8)]
    me = users[0]
    client.force_login(me)

    def count_queries():
        counts = []
        for window in ("all", "7d", "30d"):
            first = client.get("/api/leaderboard", {"window": window}).json()
            with CaptureQueriesContext(connection) as api_ctx:
                client.get("/api/leaderboard", {"window": window, "cursor": first["next_cursor"]})
            with CaptureQueriesContext(connection) as page_ctx:
                client.get("/leaderboard/", {"window": window, "cursor": first["next_cursor"]})
            counts.append((len(api_ctx), len(page_ctx)))
        return counts

    for user in users:
        for day in range(5):
            ScoreHistoryFactory(
                member=user, recorded_at=now - timedelta(days=day * 9), total_score=day
            )
    small = count_queries()
    for user in users:
        for day in range(195):
            ScoreHistoryFactory(
                member=user, recorded_at=now - timedelta(days=50 + day), total_score=day
            )
    large = count_queries()
    assert small == large
    # All time: the rows only (the rank travels in the cursor); the page adds session + user
    # + where-am-I (row, COUNT, anchor). Windows: the two fingerprint queries (the board
    # itself is cached after the first page), and the page's where-am-I reuses the same board.
    assert large[0] == (1, 6)
    assert large[1] == large[2] == (2, 4)


# --- Ranks carried in the cursor ------------------------------------------------------------

# Ties that cross page boundaries (page size 3): four 50s span pages 1 and 2, five 30s
# pages 3 and 4.
TIED_SCORES = [90, 50, 50, 50, 50, 40, 30, 30, 30, 30, 30, 20, 10, 10]


def expected_ranks(scores):
    """Competition ranks of scores already in board order."""
    return [1 + sum(1 for other in scores if other > score) for score in scores]


def test_carried_ranks_match_counted_ranks_forwards_and_backwards(make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 3
    for i, score in enumerate(TIED_SCORES):
        make_member(f"t{i:02d}", score)
    now = timezone.now()
    pages = [leaderboard.leaderboard_page(window="all", now=now)]
    while pages[-1].next_cursor:
        cursor = leaderboard.Cursor.decode(pages[-1].next_cursor, window="all")
        assert cursor.ahead is not None, "the next cursor carries its row's place"
        with CaptureQueriesContext(connection) as ctx:
            pages.append(leaderboard.leaderboard_page(window="all", cursor=cursor, now=now))
        assert len(ctx) == 1, "a page after a placed cursor needs no COUNT"
    forward = [(e.username, e.rank, e.position) for p in pages for e in p.entries]
    assert [rank for _, rank, _ in forward] == expected_ranks(TIED_SCORES)
    assert [position for _, _, position in forward] == list(range(1, len(TIED_SCORES) + 1))

    # Back up from the last page: every page (and its ranks) comes back identical.
    back = [pages[-1]]
    while back[-1].prev_cursor:
        cursor = leaderboard.Cursor.decode(back[-1].prev_cursor, window="all")
        back.append(leaderboard.leaderboard_page(window="all", cursor=cursor, now=now))
    backward = [(e.username, e.rank, e.position) for p in reversed(back) for e in p.entries]
    assert backward == forward


def test_cursor_without_a_place_still_ranks_by_counting(make_member, settings):
    settings.LEADERBOARD_PAGE_SIZE = 3
    for i, score in enumerate(TIED_SCORES):
        make_member(f"t{i:02d}", score)
    now = timezone.now()
    # A cursor in the older form (no place): after t07, inside the run of 30s.
    legacy = leaderboard.Cursor("all", 30, "t07", "after")
    assert leaderboard.Cursor.decode(legacy.encode(), window="all") == legacy
    page = leaderboard.leaderboard_page(window="all", cursor=legacy, now=now)
    assert [(e.username, e.rank) for e in page.entries] == [("t08", 7), ("t09", 7), ("t10", 7)]


@pytest.mark.parametrize("bad_place", [[-1, 0], [2, 3], [1.5, 0], [True, 0], [4]])
def test_cursor_with_a_bad_place_is_rejected(bad_place):
    raw = json.dumps(["all", 30, "t07", "a", None, *bad_place]).encode()
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(leaderboard.InvalidCursor):
        leaderboard.Cursor.decode(text, window="all")


@pytest.mark.parametrize("member_index", range(len(TIED_SCORES)))
def test_where_am_i_cursor_carries_the_right_rank(make_member, settings, member_index):
    settings.LEADERBOARD_PAGE_SIZE = 3
    users = [make_member(f"t{i:02d}", score) for i, score in enumerate(TIED_SCORES)]
    now = timezone.now()
    text = leaderboard.leaderboard_cursor_for_member(
        member=users[member_index], window="all", now=now
    )
    page_start = member_index // 3 * 3
    if page_start == 0:
        assert text == ""
        return
    cursor = leaderboard.Cursor.decode(text, window="all")
    assert (cursor.ahead, cursor.above) == (
        page_start - 1,
        expected_ranks(TIED_SCORES)[page_start - 1] - 1,
    )
    with CaptureQueriesContext(connection) as ctx:
        page = leaderboard.leaderboard_page(window="all", cursor=cursor, now=now)
    assert len(ctx) == 1
    ranks = expected_ranks(TIED_SCORES)
    assert [(e.username, e.rank) for e in page.entries] == [
        (f"t{i:02d}", ranks[i]) for i in range(page_start, min(page_start + 3, len(TIED_SCORES)))
    ]


def test_board_rows_escape_usernames_and_link_like_reverse(client, make_member, settings):
    from django.urls import reverse

    odd = "<b>o'k&co+1@x"
    make_member(odd, 1_234_567)
    me = make_member("me.me", 5)
    client.force_login(me)
    html = client.get("/leaderboard/").content.decode()
    assert "<b>o'k" not in html
    assert "&lt;b&gt;o&#x27;k&amp;co+1@x</a>" in html
    href = reverse("members:profile", args=[odd]).replace("&", "&amp;").replace("'", "&#x27;")
    assert f'<a href="{href}">' in html
    assert '<td class="num">1,234,567</td>' in html
    assert re.search(r'<tr id="me" class="me"><td class="num">2</td>', html)
    assert html.count('id="me"') == 1
