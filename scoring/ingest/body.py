"""Reading an ingest request's body: media type, size, UTF-8, JSON, nesting depth.

A well-typed ``cli_invocation`` body is decoded straight into typed entries
(``cli_batch``); any other body is parsed as generic JSON, with the checks below.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, UnreadablePostError

from scoring.ingest.cli_batch import CliBatch, cli_batch_decode
from scoring.ingest.rejections import IngestRejected, request_error

MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 100

# The only way NUL or an unpaired surrogate (which PostgreSQL cannot store) gets into a
# parsed body is a \u escape: strict JSON refuses raw control characters and strict UTF-8
# decoding refuses encoded surrogates. A body without these escapes needs no string scan.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


@dataclass(frozen=True)
class IngestPayload:
    """A parsed request body: the JSON value, its text, and whether the text is storable.

    ``text_checked`` is True when the text provably holds no NUL or unpaired surrogate, so
    validation can skip scanning every string. ``cli_batch`` is set when the typed path
    decoded the body (``data`` is then None until ``payload_data`` parses it, which only a
    fallback to the generic path needs).
    """

    data: Any
    text: str
    text_checked: bool
    cli_batch: CliBatch | None = None


def payload_data(payload: IngestPayload) -> Any:
    """The payload's JSON value, parsed from its text if the typed path skipped that."""
    if payload.cli_batch is None:
        return payload.data
    return json_parse(payload.text)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    # Refuse numbers that would not survive storage unchanged: 1e400 parses to inf (JSON
    # and jsonb cannot hold it), 1e-400 silently to 0.0 (and far smaller exponents overflow
    # PostgreSQL's numeric), and a very long mantissa may exceed numeric's precision.
    value = float(text) if len(text) <= MAX_NUMBER_LENGTH else math.nan
    if not math.isfinite(value) or (value == 0 and any(c in "123456789" for c in _mantissa(text))):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _mantissa(text: str) -> str:
    return text.lower().partition("e")[0]


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when containers nest deeper than ``limit`` (the top-level value is depth 1)."""
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


def ingest_request_parse(request: HttpRequest) -> IngestPayload:
    """Read and parse the JSON body of an ingest request.

    Raises ``IngestRejected``: 415 unless the Content-Type is ``application/json`` (a
    ``charset`` parameter must be UTF-8); 413 when the declared or actual body exceeds
    ``INGEST_MAX_BYTES`` (checked before the body is read when the length is declared);
    400 for an invalid Content-Length, a body that is not UTF-8 JSON, non-finite numbers,
    or nesting deeper than ``MAX_DEPTH``.
    """
    if request.content_type != "application/json":
        raise IngestRejected(
            415,
            {"error": "unsupported_media_type", "message": "Content-Type must be application/json"},
        )
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise IngestRejected(
            415, {"error": "unsupported_media_type", "message": "the charset must be UTF-8"}
        )
    max_bytes = settings.INGEST_MAX_BYTES
    too_large = IngestRejected(
        413,
        {
            "error": "payload_too_large",
            "message": f"the body must not exceed {max_bytes} bytes",
            "max_bytes": max_bytes,
        },
    )
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or "0")
    except ValueError:
        raise request_error("invalid_request", "Content-Length", "must be an integer") from None
    if declared_length > max_bytes:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    except UnreadablePostError:
        raise request_error("invalid_json", "body", "the body could not be read") from None
    if len(body) > max_bytes:
        raise too_large
    if not body.strip():
        # Also what a chunked upload without Content-Length looks like to a WSGI app.
        raise request_error("invalid_json", "body", "is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise request_error("invalid_json", "body", f"not valid UTF-8 (byte {exc.start})") from None
    text_checked = _UNSTORABLE_ESCAPE.search(text) is None
    cli_batch = cli_batch_decode(body) if text_checked else None
    if cli_batch is not None:
        return IngestPayload(data=None, text=text, text_checked=True, cli_batch=cli_batch)
    return IngestPayload(data=json_parse(text), text=text, text_checked=text_checked)


def json_parse(text: str) -> Any:
    """``text`` as a JSON value: 400 unless strict JSON with storable numbers, nested at most
    ``MAX_DEPTH`` levels."""
    too_deep = f"nested deeper than {MAX_DEPTH} levels"
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise request_error("invalid_json", "body", too_deep) from None
    except ValueError as exc:
        raise request_error("invalid_json", "body", f"not valid JSON: {exc}") from None
    if depth_exceeds(data):
        raise request_error("invalid_json", "body", too_deep)
    return data
