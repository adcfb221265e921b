"""Fixtures for this directory."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from awards.models import AwardRequest, BulkGrantJob
from awards.services import award_grant
from scoring.apikeys import api_key_create
from scoring.models import RescoreJob
from scoring.rules import rules_get
from tests.factories import UserFactory
from tests.security.access import STAFF_PERMISSIONS
from webhooks.services import endpoint_create, endpoint_send_test


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories set real passwords; the default PBKDF2 cost is for production, not tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """One object of each kind the URLs point at, and a logged-in client per role."""
    member = UserFactory(username="heron")
    staff = UserFactory(username="clerk", staff=True)
    staff_perm = UserFactory(username="warden", staff=True)
    staff_perm.user_permissions.add(
        *[
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in STAFF_PERMISSIONS
        ]
    )
    award = award_grant(
        recipient=member,
        points=40,
        reason="Reported a bug",
        idempotency_key="matrix-1",
        granted_by=staff_perm,
        source="form",
    ).award
    api_key, _ = api_key_create(owner=member, scopes=["ingest"])
    key_manager = UserFactory(username="keymaster", staff=True, permissions=["scoring.add_apikey"])
    # Made an award key while staff with awards.add_award, then lost both.
    demoted_owner = UserFactory(username="ex-warden", granter=True)
    _, demoted_key = api_key_create(owner=demoted_owner, scopes=["ingest", "award"])
    demoted_owner.is_staff = False
    demoted_owner.save(update_fields=["is_staff"])
    demoted_owner.user_permissions.clear()
    _, granter_key = api_key_create(owner=staff_perm, scopes=["ingest", "award"])
    # A request above the approval threshold, made by a granter who is none of the roles.
    requester = UserFactory(username="requester", staff=True)
    request = AwardRequest.objects.create(
        recipient=member,
        points=20_000,
        reason="A big contribution",
        idempotency_key="matrix-request",
        source="form",
        requested_by=requester,
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=14),
    )
    job = BulkGrantJob.objects.create(
        token=uuid.uuid4(), created_by=staff_perm, file_sha256="0" * 64
    )
    rescore_job = RescoreJob.objects.create(
        rules=rules_get(version=1), kind="dry_run", requested_by=staff_perm
    )
    endpoint, _ = endpoint_create(url="https://93.184.215.14/hook", event_types=["tier.changed"])
    delivery = endpoint_send_test(endpoint=endpoint)
    users = {
        "member": member,
        "staff": staff,
        "staff_perm": staff_perm,
        "key_manager": key_manager,
        "demoted_owner": demoted_owner,
    }
    clients = {"anonymous": Client()}
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    values = {
        "member": member.username,
        "award": award.pk,
        "key": api_key.pk,
        "job": job.token,
        "rescore_job": rescore_job.pk,
        "endpoint": endpoint.pk,
        "delivery": delivery.pk,
        "request": request.pk,
        "uid": urlsafe_base64_encode(force_bytes(member.pk)),
        "reset_token": default_token_generator.make_token(member),
        # Plaintext API keys, for the /ingest rows of the matrix.
        "keys": {"demoted_owner": demoted_key, "staff_perm": granter_key},
    }
    return clients, values
