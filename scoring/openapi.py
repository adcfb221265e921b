"""The OpenAPI 3 description of ``POST /ingest`` and the JSON API, served at ``/api/schema``.

The document is written by hand, as the contract (SPEC §4 and §8) is: it is the reference
for API clients and the input of the schemathesis run in the test suite, which checks that
every response the application gives matches it.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

_ERROR = {
    "type": "object",
    "description": "An error; ``error`` is a stable machine-readable code.",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": "string", "description": "The offending field, when there is one."},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
    "additionalProperties": True,
}

_FIELD_ERROR = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "index": {
            "type": ["integer", "null"],
            "description": "Position of the event in ``events`` (0 for a single event).",
        },
        "field": {
            "type": "string",
            "description": "Dotted path of the field, e.g. ``properties.invocation.command``.",
        },
        "message": {"type": "string"},
    },
    "additionalProperties": True,
}

# Optional CLI fields may be absent or null; when present they must have these types.
_CLI_PROPERTIES = {
    "type": "object",
    "description": "What the swamp CLI sends with ``cli_invocation``; extra keys are kept.",
    "required": ["invocation"],
    "properties": {
        "id": {
            "type": ["string", "null"],
            "maxLength": 100,
            "description": "The default ``insert_id``.",
        },
        "invocation": {
            "type": "object",
            "required": ["command"],
            "properties": {
                "command": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "The command group (compared lower-cased).",
                },
                "subcommand": {"type": ["string", "null"]},
                "args": {"type": ["array", "null"]},
                "optionKeys": {"type": ["array", "null"]},
                "globalOptions": {"type": ["object", "null"]},
            },
        },
        "result": {
            "type": ["object", "null"],
            "properties": {
                "status": {"type": ["string", "null"]},
                "exitCode": {"type": ["integer", "null"]},
            },
        },
        "startedAt": {"type": ["string", "null"], "format": "date-time"},
        "completedAt": {"type": ["string", "null"], "format": "date-time"},
        "durationMs": {"type": ["number", "null"]},
        "swampVersion": {"type": ["string", "null"]},
        "denoVersion": {"type": ["string", "null"]},
        "platform": {"type": ["string", "null"]},
    },
    "additionalProperties": True,
}

_AWARD_PROPERTIES = {
    "type": "object",
    "description": (
        "The ``award`` event (API key scope ``award``). The idempotency key is ``awardId``, "
        "else derived from ``reason`` and the event's ``timestamp``."
    ),
    "required": ["username", "points", "reason"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "description": "An existing member."},
        "points": {"type": "integer", "minimum": 1},
        "reason": {"type": "string", "minLength": 3, "maxLength": 500},
        "category": {
            "type": ["string", "null"],
            "enum": ["community", "bug_report", "content", "event", "other", None],
        },
        "public": {"type": ["boolean", "null"]},
        "awardId": {"type": ["string", "null"], "description": "The idempotency key."},
        "grantedBy": {
            "type": ["string", "null"],
            "description": "Kept as text, never used to decide who acts.",
        },
    },
    "additionalProperties": True,
}

_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}


def _event(name: dict[str, Any], properties_ref: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"$ref": properties_ref} if properties_ref else {"type": "object"}
    return {
        "type": "object",
        "required": ["event", "distinct_id", "properties"],
        "properties": {
            "event": name,
            "distinct_id": _NAME,
            "insert_id": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"},
            "timestamp": {"type": "string", "format": "date-time"},
            "properties": properties,
        },
    }


# One event: its ``properties`` depend on ``event``. Types nobody registered are accepted
# with the ``ingest`` scope (any object) and rejected later by the consumer with a reason.
_EVENT = {
    "anyOf": [
        _event({"const": "cli_invocation"}, "#/components/schemas/CliInvocationProperties"),
        _event({"const": "award"}, "#/components/schemas/AwardProperties"),
        _event({**_NAME, "not": {"enum": ["cli_invocation", "award"]}}, None),
    ]
}

_TIER = {
    "type": "object",
    "required": ["ordinal", "name"],
    "properties": {"ordinal": {"type": "integer", "minimum": 1}, "name": {"type": "string"}},
}


def _json(schema_ref: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": schema_ref}}},
        **extra,
    }


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json("#/components/schemas/Error", description, **extra)


_USERNAME = {
    "name": "username",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 150, "pattern": "^[^/]+$"},
    "example": "ada",
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict, so callers may change their copy)."""
    max_events = settings.INGEST_MAX_EVENTS
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Swamp Club API",
            "version": "1",
            "description": (
                "Telemetry ingest for the swamp CLI and read-only JSON about members' "
                "scores, awards and the leaderboard."
            ),
        },
        "paths": {
            "/ingest": {
                "post": {
                    "operationId": "ingest",
                    "summary": "Submit one telemetry event or a batch of them.",
                    "description": (
                        "All-or-nothing: any invalid event rejects the whole request and "
                        "nothing is stored. A repeated ``insert_id`` is answered 202 and "
                        "counted under ``duplicates``. Bodies over "
                        f"{settings.INGEST_MAX_BYTES} bytes are refused with 413."
                    ),
                    "security": [{"apiKey": []}, {"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Event"},
                                        {
                                            "type": "object",
                                            "required": ["events"],
                                            "properties": {
                                                "events": {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "maxItems": max_events,
                                                    "items": {"$ref": "#/components/schemas/Event"},
                                                }
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json("#/components/schemas/Accepted", "Accepted."),
                        "400": _error("Not JSON, or an invalid event; names each field."),
                        "401": _error("Missing, unknown or revoked API key."),
                        "403": _error(
                            "The key's owner account is inactive, or the key lacks the scope "
                            "an event needs (or its owner may no longer use it: the award "
                            "scope needs an owner who is still staff with awards.add_award)."
                        ),
                        "409": _error("An award key reused with different points or reason."),
                        "413": _error("The body is too large."),
                        "415": _error("The body is not ``application/json``."),
                        "429": _error(
                            "Over the per-key rate limit.",
                            headers={
                                "Retry-After": {
                                    "description": "Seconds until the limit resets.",
                                    "required": True,
                                    "schema": {"type": "integer", "minimum": 1},
                                }
                            },
                        ),
                        "503": _error("The database is unavailable; nothing was stored."),
                    },
                }
            },
            "/api/u/{username}/score": {
                "get": {
                    "operationId": "memberScore",
                    "summary": "A member's score, tier and streak.",
                    "parameters": [_USERNAME],
                    "responses": {
                        "200": _json("#/components/schemas/Score", "The member's score."),
                        "404": _error("No such member."),
                    },
                }
            },
            "/api/u/{username}/awards": {
                "get": {
                    "operationId": "memberAwards",
                    "summary": "A member's awards, newest first.",
                    "parameters": [_USERNAME],
                    "responses": {
                        "200": _json("#/components/schemas/AwardList", "The awards."),
                        "404": _error("No such member."),
                    },
                }
            },
            "/api/leaderboard": {
                "get": {
                    "operationId": "leaderboard",
                    "summary": "A page of the leaderboard; follow the cursors for more.",
                    "parameters": [
                        {
                            "name": "window",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["all", "7d", "30d"]},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json("#/components/schemas/Leaderboard", "A page."),
                        "400": _error("A bad ``window`` or ``cursor``; names the field."),
                    },
                }
            },
            "/api/schema": {
                "get": {
                    "operationId": "schema",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": _ERROR,
                "FieldError": _FIELD_ERROR,
                "Event": _EVENT,
                "CliInvocationProperties": _CLI_PROPERTIES,
                "AwardProperties": _AWARD_PROPERTIES,
                "Accepted": {
                    "type": "object",
                    "required": ["accepted", "duplicates"],
                    "properties": {
                        "accepted": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                    },
                },
                "Tier": _TIER,
                "Score": {
                    "type": "object",
                    "required": [
                        "username",
                        "total_score",
                        "activity_score",
                        "award_points",
                        "tier",
                        "streak_days",
                        "computed_at",
                    ],
                    "properties": {
                        "username": {"type": "string"},
                        "total_score": {"type": "integer"},
                        "activity_score": {"type": "integer"},
                        "award_points": {"type": "integer"},
                        "tier": {"$ref": "#/components/schemas/Tier"},
                        "streak_days": {"type": "integer", "minimum": 0},
                        "computed_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
                "AwardList": {
                    "type": "object",
                    "required": ["awards"],
                    "properties": {
                        "awards": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "id",
                                    "points",
                                    "reason",
                                    "category",
                                    "granted_at",
                                    "revoked",
                                ],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "points": {"type": "integer", "minimum": 1},
                                    "reason": {
                                        "type": ["string", "null"],
                                        "description": "null for a private award.",
                                    },
                                    "category": {"type": "string"},
                                    "granted_at": {"type": "string", "format": "date-time"},
                                    "revoked": {"type": "boolean"},
                                },
                            },
                        }
                    },
                },
                "Leaderboard": {
                    "type": "object",
                    "required": ["window", "entries", "next_cursor", "prev_cursor"],
                    "properties": {
                        "window": {"type": "string", "enum": ["all", "7d", "30d"]},
                        "window_start": {"type": ["string", "null"], "format": "date-time"},
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["rank", "username", "total_score", "tier"],
                                "properties": {
                                    "rank": {"type": "integer", "minimum": 1},
                                    "username": {"type": "string"},
                                    "total_score": {"type": "integer"},
                                    "tier": {"$ref": "#/components/schemas/Tier"},
                                    "gain": {
                                        "type": "integer",
                                        "description": "Only for the 7d and 30d windows.",
                                    },
                                },
                            },
                        },
                        "next_cursor": {"type": ["string", "null"]},
                        "prev_cursor": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }


@require_GET
@cache_control(public=True, max_age=300)
def openapi_schema(request: HttpRequest) -> JsonResponse:
    """``GET /api/schema``: the OpenAPI document as JSON."""
    return JsonResponse(openapi_document())
