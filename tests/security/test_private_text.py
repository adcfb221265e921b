"""Private award reasons and staff notes show on staff pages only with ``awards.view_award``."""

import pytest

from awards.services import award_grant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PRIVATE_REASON = "Quietly fixed a data leak"
PUBLIC_REASON = "Ran the autumn meetup"
STAFF_NOTE = "Do not mention the customer by name"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def awards(db):
    """One private award with a staff note and one public award, to one member."""
    granter = UserFactory(username="warden", granter=True)
    member = UserFactory(username="heron")
    private = award_grant(
        recipient=member,
        points=70,
        reason=PRIVATE_REASON,
        staff_note=STAFF_NOTE,
        public=False,
        idempotency_key="private-1",
        granted_by=granter,
        source="form",
    ).award
    award_grant(
        recipient=member,
        points=30,
        reason=PUBLIC_REASON,
        idempotency_key="public-1",
        granted_by=granter,
        source="form",
    )
    return member, private


def _page(client, user, path: str) -> str:
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


@pytest.mark.parametrize(
    ("path", "permissions"),
    [
        ("/staff/", []),
        ("/staff/awards/new", ["awards.add_award"]),
        ("/staff/awards/{award}/revoke", ["awards.add_awardrevocation"]),
    ],
)
def test_staff_without_view_award_never_see_private_reasons(client, awards, path, permissions):
    _, private = awards
    clerk = UserFactory(username="clerk", staff=True, permissions=permissions)
    html = _page(client, clerk, path.format(award=private.pk))
    assert PRIVATE_REASON not in html
    assert STAFF_NOTE not in html
    assert "reason hidden" in html
    if path != "/staff/awards/{award}/revoke":
        assert PUBLIC_REASON in html  # public reasons are public anyway


@pytest.mark.parametrize(
    ("path", "permissions"),
    [
        ("/staff/", []),
        ("/staff/awards/new", ["awards.add_award"]),
        ("/staff/awards/{award}/revoke", ["awards.add_awardrevocation"]),
        ("/staff/awards/", []),
        ("/staff/members/heron/", []),
    ],
)
def test_holders_of_view_award_see_private_reasons(client, awards, path, permissions):
    _, private = awards
    reader = UserFactory(
        username="reader", staff=True, permissions=[*permissions, "awards.view_award"]
    )
    html = _page(client, reader, path.format(award=private.pk))
    assert PRIVATE_REASON in html
    assert "reason hidden" not in html


def test_staff_notes_show_only_with_view_award(client, awards):
    reader = UserFactory(username="reader", staff=True, permissions=["awards.view_award"])
    assert STAFF_NOTE in _page(client, reader, "/staff/members/heron/")
    response = client.get("/staff/awards/?format=csv")
    csv = b"".join(response.streaming_content).decode()
    assert STAFF_NOTE in csv
    assert PRIVATE_REASON in csv
    # The pages that list awards to other staff never carry the note.
    granter = UserFactory(username="granter2", staff=True, permissions=["awards.add_award"])
    assert STAFF_NOTE not in _page(client, granter, "/staff/awards/new")
    assert client.get("/staff/awards/?format=csv").status_code == 403
    assert client.get("/staff/members/heron/").status_code == 403
