"""The audit trail: every staff write leaves one entry; the table is append-only."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

from audit.models import AuditEntry
from audit.services import audit_record
from awards.models import Award, AwardRequest, BulkGrantJob
from awards.requests import award_grant_or_request
from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import RescoreJob
from scoring.rules import rules_get
from tests.awards.conftest import staff_with
from tests.factories import UserFactory
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create, endpoint_send_test

pytestmark = pytest.mark.django_db

UA = {"User-Agent": "audit-test/1.0"}


@pytest.fixture
def boss(db):
    """A staff superuser: every permission, so every staff POST can be made."""
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


def make_entry(**kwargs) -> AuditEntry:
    return audit_record(action=kwargs.pop("action", "test.write"), actor=None, **kwargs)


# --- append-only ----------------------------------------------------------------------------


def test_raw_sql_update_is_refused_by_the_database():
    entry = make_entry()
    table = AuditEntry._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET action = 'rewritten' WHERE id = %s", [entry.pk])  # noqa: S608
    assert AuditEntry.objects.get().action == "test.write"


def test_raw_sql_delete_is_refused_by_the_database():
    entry = make_entry()
    table = AuditEntry._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [entry.pk])  # noqa: S608
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    assert AuditEntry.objects.count() == 1


def test_orm_update_and_delete_are_refused_too():
    entry = make_entry()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    entry.action = "rewritten"
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.save()
    assert AuditEntry.objects.get().action == "test.write"


# --- every staff POST leaves one entry ---------------------------------------------------------


def staff_routes():
    """(route, pattern) of every endpoint under /staff/."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern

    return {
        route: p for route, p in walk(get_resolver().url_patterns) if route.startswith("staff/")
    }


def fill(route: str, values: dict) -> str:
    path = "/" + route
    for converter in ("int", "str", "uuid"):
        for name, value in values.items():
            path = path.replace(f"<{converter}:{name}>", str(value))
    return path


@pytest.fixture
def world(boss, ada):
    """Objects for every staff URL: an award, a key, a request from someone else, a job."""
    requester = staff_with("requester", "add_award")
    award = award_grant_or_request(
        recipient=ada,
        points=40,
        reason="Reported a bug",
        idempotency_key="w-1",
        granted_by=requester,
        source="form",
    ).award
    api_key, _ = api_key_create(owner=ada, scopes=["ingest"])
    request = AwardRequest.objects.create(
        recipient=ada,
        points=20_000,
        reason="Summit keynote",
        idempotency_key="w-req",
        source="form",
        requested_by=requester,
        created_at=award.created_at,
        expires_at=award.created_at.replace(year=award.created_at.year + 1),
    )
    other = AwardRequest.objects.create(
        recipient=ada,
        points=20_000,
        reason="Summit talk",
        idempotency_key="w-req-2",
        source="form",
        requested_by=requester,
        created_at=award.created_at,
        expires_at=award.created_at.replace(year=award.created_at.year + 1),
    )
    UserFactory(username="bea")
    endpoint, _ = endpoint_create(url="https://93.184.215.14/hook", event_types=["tier.changed"])
    delivery = endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="dead")  # redeliverable
    job = RescoreJob.objects.create(rules=rules_get(version=1), kind="dry_run")
    return {
        "endpoint_id": endpoint.pk,
        "delivery_id": delivery.pk,
        "job_id": job.pk,
        "award_id": award.pk,
        "key_id": api_key.pk,
        "request_id": request.pk,
        "other_request": other.pk,
        "username": requester.username,
        "token": "00000000-0000-0000-0000-000000000000",
    }


def bulk_file():
    return SimpleUploadedFile("fair.csv", b"username,points,reason\nbea,300,Fair helper\n")


# Route → the POSTs that write (data, extra path values); each must leave one entry.
RECIPES = {
    "staff/awards/new": [
        {
            "username": "bea",
            "points": "500",
            "reason": "Ran the fair",
            "category": "event",
            "public": "on",
            "idempotency_key": "walk-1",
        }
    ],
    "staff/awards/bulk": ["upload", "confirm"],
    "staff/awards/<int:award_id>/revoke": [{"reason": "Granted twice"}],
    "staff/api-keys/": [{"username": "ada", "name": "laptop", "scopes": ["ingest"]}],
    "staff/api-keys/<int:key_id>/revoke": [{}],
    "staff/awards/requests/<int:request_id>/approve": [{}],
    "staff/awards/requests/<int:request_id>/reject": [{"reason": "Not this time"}],
    "staff/awards/budgets/<str:username>": [{"points": "70000"}],
    "staff/rescore/": [{"version": "1", "kind": "dry_run"}],
    "staff/webhooks/": [
        {
            "url": "https://93.184.215.15/hook",
            "event_types": ["award.granted"],
            "format": "json",
            "private_awards": "points",
        }
    ],
    "staff/webhooks/<int:endpoint_id>/active": [{"active": "0"}],
    "staff/webhooks/<int:endpoint_id>/rotate": [{}],
    "staff/webhooks/<int:endpoint_id>/test": [{}],
    "staff/webhooks/deliveries/<int:delivery_id>/redeliver": [{}],
}
# POST endpoints that write nothing (declared with ``audit_exempt``).
WRITE_FREE = {"staff/awards/validate"}


def test_every_staff_post_leaves_exactly_one_audit_entry(client, boss, world, ada):
    # Which routes take a POST: a member (no rights) gets 405 where POST is not allowed at
    # all and 403 where it is — and writes nothing either way.
    client.force_login(ada)
    baseline = AuditEntry.objects.count()  # the world's own grant
    posting = {
        route for route in staff_routes() if client.post(fill(route, world), {}).status_code != 405
    }
    assert AuditEntry.objects.count() == baseline
    assert posting == set(RECIPES) | WRITE_FREE, "a staff POST route without an audit recipe"
    client.force_login(boss)

    for route, recipes in RECIPES.items():
        values = dict(world)
        if route.endswith("/reject"):
            values["request_id"] = world["other_request"]  # approve took the first
        path = fill(route, values)
        for recipe in recipes:
            if recipe == "upload":
                data = {"file": bulk_file()}
            elif recipe == "confirm":
                data = {"token": str(BulkGrantJob.objects.get(status="dry_run").token)}
            else:
                data = recipe
            before = AuditEntry.objects.count()
            response = client.post(path, data, headers=UA)
            assert response.status_code in (200, 302), (route, response.status_code)
            new = list(AuditEntry.objects.order_by("id")[before:])
            assert len(new) == 1, (route, recipe, [e.action for e in new])
            (entry,) = new
            assert (entry.actor, entry.actor_username) == (boss, "boss")
            assert (entry.ip, entry.user_agent, entry.path) == ("127.0.0.1", UA["User-Agent"], path)
            assert entry.action != "staff.post", f"{route} fell back to the generic entry"

    before = AuditEntry.objects.count()
    response = client.post(
        "/staff/awards/validate",
        {"points": "5"},
        headers={"HX-Request": "true", "HX-Target": "field-points"},
    )
    assert response.status_code == 200
    assert AuditEntry.objects.count() == before


def test_entries_carry_before_and_after(client, boss, world, ada):
    client.force_login(boss)
    client.post(f"/staff/awards/requests/{world['request_id']}/approve")
    entry = AuditEntry.objects.get(action="request.approve")
    assert entry.before["state"] == "pending"
    assert entry.after["state"] == "approved"
    assert entry.after["award"] == Award.objects.get(idempotency_key="w-req").pk
    assert (entry.object_type, entry.object_id) == ("awardrequest", str(world["request_id"]))
    assert entry.member == ada


def test_a_staff_post_nothing_else_recorded_gets_a_generic_entry(client, boss, world):
    client.force_login(boss)
    client.post(f"/staff/awards/requests/{world['request_id']}/approve")
    before = AuditEntry.objects.count()
    # Approving again writes nothing, but the attempt is still on record.
    client.post(f"/staff/awards/requests/{world['request_id']}/approve", {"note": "again"})
    (entry,) = AuditEntry.objects.order_by("id")[before:]
    assert (entry.action, entry.actor) == ("staff.post", boss)
    assert entry.after == {"fields": ["note"]}


def test_award_events_are_audited_with_the_key_owner_as_actor(client, ada):
    owner = staff_with("botowner", "add_award")
    _, key = api_key_create(owner=owner, scopes=["award"], name="bot")
    event = {
        "event": "award",
        "distinct_id": "bot",
        "insert_id": "e-1",
        "properties": {"username": "ada", "points": 70, "reason": "Docs fix", "awardId": "d-1"},
    }
    response = client.post(
        "/ingest", json.dumps(event), content_type="application/json", headers={"x-api-key": key}
    )
    assert response.status_code == 202
    events_consume()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.member) == ("award.grant", owner, ada)
    assert entry.after["points"] == 70


# --- the audit page -------------------------------------------------------------------------


@pytest.fixture
def auditor(db):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="auditor", staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    return user


def test_audit_page_needs_the_permission(client):
    client.force_login(staff_with("clerk", "add_award"))
    assert client.get("/staff/audit/").status_code == 403


def test_audit_filters_by_actor_action_member_and_date(client, auditor, ada):
    bea = UserFactory(username="bea")
    boss = UserFactory(username="boss", is_staff=True)
    audit_record(action="award.grant", actor=boss, member=ada, object_repr="one")
    audit_record(action="award.revoke", actor=boss, member=bea, object_repr="two")
    audit_record(action="award.grant", actor=auditor, member=bea, object_repr="three")
    client.force_login(auditor)

    def listed(**params):
        response = client.get("/staff/audit/", {"format": "csv", **params})
        return [row["object"] for row in csv.DictReader(io.StringIO(response.getvalue().decode()))]

    assert listed() == ["three", "two", "one"]
    assert listed(actor="boss") == ["two", "one"]
    assert listed(action="award.grant") == ["three", "one"]
    assert listed(member="bea") == ["three", "two"]
    assert listed(date_from="2000-01-01", date_to="2000-01-02") == []
    html = client.get("/staff/audit/", {"member": "ada"}).content.decode()
    assert "one" in html
    assert "three" not in html


def test_audit_csv_has_the_spec_columns(client, auditor, ada):
    audit_record(action="award.grant", actor=auditor, member=ada, after={"points": 5})
    client.force_login(auditor)
    response = client.get("/staff/audit/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert {"at", "actor", "action", "object"} <= set(rows[0])
    assert (rows[0]["actor"], rows[0]["action"], rows[0]["member"]) == (
        "auditor",
        "award.grant",
        "ada",
    )
    assert json.loads(rows[0]["after"]) == {"points": 5}


def test_audit_pages_by_keyset(client, auditor):
    for index in range(120):
        audit_record(action="test.write", actor=None, object_repr=f"e{index}")
    client.force_login(auditor)
    seen, before = [], None
    for _ in range(5):
        params = {"before": before} if before else {}
        page = client.get("/staff/audit/", params).context["page"]
        seen.extend(e.object_repr for e in page.entries)
        before = page.older
        if before is None:
            break
    assert seen == [f"e{i}" for i in reversed(range(120))]


@pytest.mark.parametrize("cursor", ["abc", "0", "-5", str(2**70)])
def test_bad_cursors_are_4xx(client, auditor, cursor):
    client.force_login(auditor)
    assert client.get("/staff/audit/", {"before": cursor}).status_code == 400


def test_audit_page_query_count_does_not_grow(client, auditor, django_assert_max_num_queries):
    for index in range(80):
        audit_record(action="test.write", actor=auditor, object_repr=f"e{index}")
    client.force_login(auditor)
    # Session, user, permissions (2), the page, the actions.
    with django_assert_max_num_queries(6):
        assert client.get("/staff/audit/").status_code == 200
