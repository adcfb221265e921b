"""The OpenAPI 3 description of ``POST /ingest`` and the JSON API, served at ``/api/schema``.

The document is the contract (SPEC §4 and §8): the reference for API clients and the input
of the schemathesis run in the test suite, which checks that the application accepts what
it allows, refuses what it forbids, and answers as it says. The ``cli_invocation``
properties are generated from the compiled wire types in ``scoring.ingest.wire`` (the same
definitions ingest validates and counts drift with); the rest is written here.
"""

import copy
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from scoring.ingest.wire import NONBLANK, openapi_cli_invocation_properties

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


# A number in the explanation: an integer, or exact text when settings made it fractional.
_EXACT_NUMBER = {"type": ["integer", "string"]}
_MULTIPLIER = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+|/[0-9]+)?$",
    "description": "Exact: a decimal when it has one (``1.04``), else a fraction (``16/15``).",
}
_SCORE_EXPLANATION = {
    "type": "object",
    "required": [
        "username",
        "rules_version",
        "as_of",
        "groups",
        "base_points",
        "diversity_points",
        "streak",
        "rolling",
        "activity_score",
        "awards",
        "award_points",
        "total_score",
    ],
    "properties": {
        "username": {"type": "string"},
        "rules_version": {"type": "integer", "minimum": 1},
        "as_of": {
            "type": ["string", "null"],
            "format": "date",
            "description": "The UTC day the activity was computed as of (null: not yet).",
        },
        "groups": {
            "type": "array",
            "description": "Sorted by group.",
            "items": {
                "type": "object",
                "required": ["group", "count", "points", "capped_points"],
                "properties": {
                    "group": {"type": "string"},
                    "count": {"type": "integer", "minimum": 1},
                    "points": {**_EXACT_NUMBER, "description": "count x base, before the cap."},
                    "capped_points": _EXACT_NUMBER,
                },
            },
        },
        "base_points": {**_EXACT_NUMBER, "description": "The sum of capped_points."},
        "diversity_points": _EXACT_NUMBER,
        "streak": {
            "type": "object",
            "required": ["days", "multiplier"],
            "properties": {"days": {"type": "integer", "minimum": 0}, "multiplier": _MULTIPLIER},
        },
        "rolling": {
            "type": "object",
            "required": ["active_days", "multiplier"],
            "properties": {
                "active_days": {"type": "integer", "minimum": 0},
                "multiplier": _MULTIPLIER,
            },
        },
        "activity_score": {"type": "integer"},
        "awards": {
            "type": "array",
            "description": "Newest first; revoked awards are listed and do not count.",
            "items": {
                "type": "object",
                "required": ["id", "points", "revoked"],
                "properties": {
                    "id": {"type": "integer"},
                    "points": {"type": "integer", "minimum": 1},
                    "revoked": {"type": "boolean"},
                },
            },
        },
        "award_points": {"type": "integer"},
        "total_score": {"type": "integer"},
    },
}


_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NONBLANK}


_INSERT_ID = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NONBLANK}
_HAS_INSERT_ID = {"required": ["insert_id"], "properties": {"insert_id": {"type": "string"}}}


def _event(
    name: dict[str, Any], properties_ref: str | None, *, id_rule: list[dict[str, Any]]
) -> dict[str, Any]:
    properties: dict[str, Any] = {"$ref": properties_ref} if properties_ref else {"type": "object"}
    return {
        "type": "object",
        "required": ["event", "distinct_id", "properties"],
        "properties": {
            "event": name,
            "distinct_id": _NAME,
            "insert_id": {
                "anyOf": [_INSERT_ID, {"type": "null"}],
                "description": "The deduplication key; null or absent: the type's default.",
            },
            "timestamp": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": (
                    "When the event happened; null or absent: when it was received. At most "
                    f"{settings.TELEMETRY_MAX_FUTURE_S} seconds in the future."
                ),
            },
            "properties": properties,
        },
        # Where the deduplication key comes from.
        "anyOf": id_rule,
        # An object holding ``events`` is a batch, never an event.
        "not": {"required": ["events"]},
        "additionalProperties": True,
    }


def _event_schema() -> dict[str, Any]:
    """One event: its ``properties`` depend on ``event``. Types nobody registered are
    accepted with the ``ingest`` scope (any object, an explicit ``insert_id``) and rejected
    later by the consumer with a reason."""
    cli_id = {"properties": {"properties": {"required": ["id"], "properties": {"id": _INSERT_ID}}}}
    award_key = {
        "anyOf": [
            {"required": ["timestamp"], "properties": {"timestamp": {"type": "string"}}},
            {
                "properties": {
                    "properties": {
                        "required": ["awardId"],
                        "properties": {"awardId": {"type": "string"}},
                    }
                }
            },
        ]
    }
    return {
        "anyOf": [
            _event(
                {"const": "cli_invocation"},
                "#/components/schemas/CliInvocationProperties",
                id_rule=[_HAS_INSERT_ID, cli_id],
            ),
            _event({"const": "award"}, "#/components/schemas/AwardProperties", id_rule=[award_key]),
            _event(
                {**_NAME, "not": {"enum": ["cli_invocation", "award"]}},
                None,
                id_rule=[_HAS_INSERT_ID],
            ),
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


# Paths and component schemas that apps built on scoring add to the document, so they
# document their own routes and event types without scoring importing them (see
# ``openapi_extend``). A builder runs each time the document is made, so a schema that
# reads settings (the award points cap) follows them.
_EXTENSIONS: list[tuple[dict[str, Any], dict[str, Any]]] = []
_SCHEMA_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {}


def openapi_extend(
    *,
    paths: dict[str, Any] | None = None,
    schemas: dict[str, Any] | None = None,
    schema_builders: dict[str, Callable[[], dict[str, Any]]] | None = None,
) -> None:
    """Add ``paths``, component ``schemas`` and component schemas made by
    ``schema_builders`` (name → builder) to the document; call from ``AppConfig.ready``.

    The ``award`` event's ``AwardProperties`` come from the awards app this way
    (``awards.rules.award_properties_schema``); the ``Event`` schema refers to them.
    """
    _EXTENSIONS.append((paths or {}, schemas or {}))
    _SCHEMA_BUILDERS.update(schema_builders or {})


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict, so callers may change their copy)."""
    max_events = settings.INGEST_MAX_EVENTS
    document: dict[str, Any] = {
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
                                            # Other keys are ignored (not stored).
                                            "additionalProperties": True,
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
            "/api/u/{username}/score/explain": {
                "get": {
                    "operationId": "memberScoreExplain",
                    "summary": "How a member's stored score is made, line by line.",
                    "description": (
                        "The figures the stored score was computed from (never recomputed "
                        "with today's date): activity_score = floor((base_points + "
                        "diversity_points) x streak.multiplier x rolling.multiplier) and "
                        "total_score = activity_score + award_points, exactly as stored. "
                        "Multipliers are exact strings: a decimal when exact, else a fraction."
                    ),
                    "parameters": [_USERNAME],
                    "responses": {
                        "200": _json("#/components/schemas/ScoreExplanation", "The explanation."),
                        "404": _error("No such member."),
                        "409": _error(
                            "A score stored before explanations whose inputs changed; "
                            "explained after its next refresh."
                        ),
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
                            "description": (
                                "Opaque: a ``next_cursor`` or ``prev_cursor`` of this window. "
                                "Empty means the first page; one naming no place on this "
                                "board is answered 404."
                            ),
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
                        },
                    ],
                    "responses": {
                        "200": _json("#/components/schemas/Leaderboard", "A page."),
                        "400": _error("A bad ``window`` or ``cursor``; names the field."),
                        "404": _error("The ``cursor`` names no place on this board."),
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
                "Event": _event_schema(),
                "CliInvocationProperties": openapi_cli_invocation_properties(),
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
                "ScoreExplanation": _SCORE_EXPLANATION,
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
    for paths, schemas in _EXTENSIONS:
        document["paths"].update(copy.deepcopy(paths))
        document["components"]["schemas"].update(copy.deepcopy(schemas))
    for name, build in _SCHEMA_BUILDERS.items():
        document["components"]["schemas"][name] = build()
    return document


# Read-only and cookie-free: exempt from CSRF so that any other method (PUT, PATCH, QUERY...)
# gets require_GET's 405 with ``Allow`` rather than the CSRF middleware's 403 page.
@csrf_exempt
@require_GET
@cache_control(public=True, max_age=300)
def openapi_schema(request: HttpRequest) -> JsonResponse:
    """``GET /api/schema``: the OpenAPI document as JSON."""
    return JsonResponse(openapi_document())
