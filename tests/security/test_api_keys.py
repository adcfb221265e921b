"""API keys: only a hash is stored, the comparison is constant-time, revocation is at once."""

import hashlib
import hmac
import json
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.db import models
from django.db.models.functions import Cast
from django.test import Client

from scoring import apikeys
from scoring.apikeys import api_key_authenticate, api_key_create, api_key_revoke
from scoring.models import ApiKey
from tests.cli_wire import cli_event
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXTUAL = (models.CharField, models.TextField, models.JSONField, models.BinaryField)


def _columns_containing(needle: str) -> list[str]:
    """Every ``table.column`` of every model holding ``needle`` anywhere in its text."""
    hits = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, TEXTUAL):
                continue
            matches = (
                model._default_manager.annotate(_text=Cast(field.attname, models.TextField()))
                .filter(_text__contains=needle)
                .exists()
            )
            if matches:
                hits.append(f"{model._meta.db_table}.{field.column}")
    return hits


def test_the_plaintext_key_is_stored_in_no_column():
    api_key, raw = api_key_create(
        owner=UserFactory(granter=True), scopes=["ingest", "award"], name="ci"
    )
    assert raw.startswith("swamp_")
    assert len(raw) == 38
    secret = raw[len(api_key.prefix) :]
    assert _columns_containing(raw) == []
    assert _columns_containing(secret) == []
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(stored.prefix)


def test_key_hashes_are_compared_in_constant_time():
    api_key, raw = api_key_create(owner=UserFactory(), scopes=["ingest"])
    with mock.patch.object(apikeys.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        assert api_key_authenticate(raw) == api_key
        # Same public prefix, wrong secret: found by prefix, refused by the comparison.
        forged = raw[: len(api_key.prefix)] + "f" * (len(raw) - len(api_key.prefix))
        assert forged != raw
        assert api_key_authenticate(forged) is None
    assert spy.call_count == 2
    for call in spy.call_args_list:
        assert api_key.key_hash in call.args


def test_revoked_key_stops_authenticating_at_once():
    api_key, raw = api_key_create(owner=UserFactory(), scopes=["ingest"])
    assert api_key_authenticate(raw) is not None
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(raw) is None


def test_key_of_a_deactivated_member_is_refused():
    owner = UserFactory()
    _, raw = api_key_create(owner=owner, scopes=["ingest"])
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert api_key_authenticate(raw) is None


def test_key_revoked_on_the_staff_page_is_refused_by_ingest_at_once(client):
    api_key, raw = api_key_create(owner=UserFactory(), scopes=["ingest"])
    staff = UserFactory(staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="scoring", codename="add_apikey")
    )
    event = json.dumps(cli_event("page-revoke-1"))
    ingest = Client(HTTP_X_API_KEY=raw)
    assert ingest.post("/ingest", event, content_type="application/json").status_code == 202

    client.force_login(staff)
    assert client.post(f"/staff/api-keys/{api_key.pk}/revoke").status_code == 302
    response = ingest.post("/ingest", event, content_type="application/json")
    assert response.status_code == 401
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
