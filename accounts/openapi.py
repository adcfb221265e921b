"""The CLI's sign-in routes in the OpenAPI document at ``/api/schema`` (SPEC §10)."""

from typing import Any

ERROR = "#/components/schemas/Error"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the client may try again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(ref: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ref}}},
        **extra,
    }


def _body(properties: dict[str, Any], required: list[str], example: dict[str, Any]) -> dict:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": required, "properties": properties},
                "example": example,
            }
        },
    }


_SECRET = {"type": "string", "minLength": 1, "maxLength": 254}


def _sign_in(login: str, example: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"signIn{login.capitalize()}",
            "summary": f"Sign the swamp CLI in by {login} and password.",
            "description": (
                "Answers a sign-in token good for one ``/api/auth/api-key/create`` within "
                "10 minutes. Throttled with the site login, per account and per IP."
            ),
            "requestBody": _body(
                {login: _SECRET, "password": _SECRET},
                [login, "password"],
                {login: example, "password": "correct horse battery"},
            ),
            "responses": {
                "200": _json("#/components/schemas/SignIn", "Signed in."),
                "400": _json(ERROR, "Not a JSON object with both fields as strings."),
                "401": _json(ERROR, "Invalid username/email or password."),
                "429": _json(ERROR, "Too many failed attempts.", headers=_RETRY_AFTER),
            },
        }
    }


_USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "email", "name", "username"],
    "properties": {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "username": {"type": "string"},
    },
}

PATHS: dict[str, Any] = {
    "/api/auth/sign-in/username": _sign_in("username", "ada"),
    "/api/auth/sign-in/email": _sign_in("email", "ada@example.com"),
    "/api/auth/api-key/create": {
        "post": {
            "operationId": "cliApiKeyCreate",
            "summary": "Trade a sign-in token (once) for an ``ingest`` API key.",
            "security": [{"bearer": []}],
            "requestBody": _body(
                {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
                ["name"],
                {"name": "cli-devbox-1732870000000"},
            ),
            "responses": {
                "201": _json("#/components/schemas/CliApiKey", "The key; shown only here."),
                "400": _json(ERROR, "Not a JSON object, or no name; names the field."),
                "401": _json(ERROR, "Missing, unknown, expired or spent sign-in token."),
            },
        }
    },
    "/api/whoami": {
        "get": {
            "operationId": "whoami",
            "summary": "Whose API key this is.",
            "security": [{"apiKey": []}, {"bearer": []}],
            "responses": {
                "200": _json("#/components/schemas/WhoAmI", "The key's owner."),
                "401": _json(ERROR, "Missing, unknown or revoked key, or an inactive owner."),
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "SignIn": {
        "type": "object",
        "required": ["token", "user"],
        "properties": {"token": {"type": "string"}, "user": _USER},
    },
    "CliApiKey": {
        "type": "object",
        "required": ["id", "key"],
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string", "pattern": "^swamp_[0-9a-f]{32}$"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
        },
    },
    "WhoAmI": {
        "type": "object",
        "required": ["authenticated", "id", "username", "email", "name", "scopes"],
        "properties": {
            "authenticated": {"const": True},
            **_USER["properties"],
            "scopes": {"type": "array", "items": {"type": "string"}},
        },
    },
}
