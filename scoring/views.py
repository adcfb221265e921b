"""HTTP interfaces of the scoring app."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from scoring.apikeys import ApiKeyRefused, api_key_authorize, api_key_from_request
from scoring.ingest import (
    IngestRejected,
    cli_version_from_user_agent,
    events_ingest,
    ingest_request_parse,
)
from scoring.ratelimit import rate_limit_hit
from swampclub.http import json_error
from swampclub.outages import Dependency

logger = logging.getLogger("swampclub.ingest")

# The database as ingest sees it: an outage is logged when it starts and when it ends (with
# the requests answered 503 meanwhile), not with a traceback per request.
ingest_database = Dependency("database", logger, consequence="ingest answers 503 (clients retry)")

# How long a client should wait before retrying when the database is unreachable.
DATABASE_RETRY_AFTER_S = 5


@csrf_exempt
def ingest(request: HttpRequest) -> JsonResponse:
    """``POST /ingest``: store telemetry events for the API key's owner (SPEC §4).

    Order of checks: 401 (key), 403 (the key's owner is inactive), 429 (per-key rate
    limit), 415/413/400 (body), 403/400/409 (events: a scope the key lacks or its owner may
    no longer use is 403), then 202. A database outage answers 503 — never 202 — so clients
    retry; it is logged once when it starts and once when a request reaches the database
    again (``ingest_database``).
    """
    if request.method != "POST":
        response = json_error(405, "method_not_allowed", message="use POST")
        response["Allow"] = "POST"
        return response
    reached_database = False
    try:
        try:
            api_key = api_key_authorize(api_key_from_request(request))
        except ApiKeyRefused as refused:
            if refused.status == 403:
                return json_error(403, "forbidden", message=refused.message)
            response = json_error(401, "unauthorized", message=refused.message)
            response["WWW-Authenticate"] = 'Bearer realm="ingest"'
            return response
        # The key was read from the database: whatever follows, it is answering.
        reached_database = True
        retry_after = rate_limit_hit(
            bucket=f"ingest:{api_key.pk}",
            limit=settings.INGEST_RATE_LIMIT,
            window_s=settings.INGEST_RATE_WINDOW_S,
        )
        if retry_after is not None:
            response = json_error(
                429, "rate_limited", message="too many requests", retry_after=retry_after
            )
            response["Retry-After"] = str(retry_after)
            return response
        result = events_ingest(
            api_key=api_key,
            payload=ingest_request_parse(request),
            cli_version=cli_version_from_user_agent(request.headers.get("User-Agent")),
        )
    except IngestRejected as rejected:
        answer = JsonResponse(rejected.body, status=rejected.status)
    except (OperationalError, InterfaceError) as exc:
        ingest_database.failed(exc)
        response = json_error(503, "unavailable", message="database unavailable; retry later")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    else:
        body = {"accepted": result.accepted, "duplicates": result.duplicates, **result.extra}
        answer = JsonResponse(body, status=202)
    if reached_database:
        ingest_database.succeeded()
    return answer
