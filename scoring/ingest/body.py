"""Reading an ingest request's body: media type, size, UTF-8, JSON, nesting depth."""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, UnreadablePostError
from msgspec import DecodeError
from msgspec.json import Decoder

MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 100

# The only way NUL or an unpaired surrogate (which PostgreSQL cannot store) gets into a
# parsed body is a \u escape: strict JSON refuses raw control characters and strict UTF-8
# decoding refuses encoded surrogates. A body without these escapes needs no string scan.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# Numbers the compiled decoder would take where the strict parser refuses (it turns 1e-400
# into 0.0 and keeps 101-digit mantissas): a body holding anything like one goes the strict
# way. A false alarm (a UUID with "e-123" in it) only costs the slower parser.
_RISKY_NUMBER = re.compile(r"[eE]-[0-9]{3}|[0-9.]{101}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")
_decode = Decoder().decode


@dataclass(frozen=True)
class IngestPayload:
    """A parsed request body: the JSON value, its text, and whether the text is storable.

    ``text_checked`` is True when the text provably holds no NUL or unpaired surrogate, so
    validation can skip scanning every string.
    """

    data: Any
    text: str
    text_checked: bool


class IngestRejected(Exception):
    """A refused ingest request: the HTTP status and JSON body to answer with."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message") or body.get("error"))
        self.status = status
        self.body = body


def request_error(error: str, field: str, message: str) -> IngestRejected:
    """A 400 about the request as a whole (``index`` null), shaped like per-event errors.

    The field is named at the top and, like per-event errors, in ``errors``, so clients can
    read every 400 the same way.
    """
    return IngestRejected(
        400,
        {
            "error": error,
            "field": field,
            "message": message,
            "errors": [{"index": None, "field": field, "message": message}],
        },
    )


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


def text_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """``depth_exceeds`` for valid JSON text, without walking the decoded value.

    Strings are blanked out, then only brackets kept; each pass removes the innermost
    ``[]``/``{}`` pairs, so a body nested ``d`` deep is empty after ``d`` passes. Every pass
    is one C-level regex substitution: far cheaper than visiting each node in Python.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


def json_parse(text: str) -> Any:
    """Decode JSON text as the strict parser does (``ValueError``/``RecursionError`` when
    not JSON, a non-finite number or one that would not survive storage).

    The compiled msgspec decoder takes the common case (about twice as fast); anything it
    might read differently — a refused or unusual number, an escaped surrogate — or cannot
    read at all goes through ``json.loads`` with the strict hooks, which gives the error.
    """
    if not _RISKY_NUMBER.search(text):
        try:
            return _decode(text)
        except DecodeError:
            pass  # the strict parser names the problem
    return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)


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
    charset = request.content_params.get("charset", "utf-8").lower()
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
    too_deep = f"nested deeper than {MAX_DEPTH} levels"
    try:
        data = json_parse(text)
    except RecursionError:
        raise request_error(
            "invalid_json", "body", f"nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise request_error("invalid_json", "body", f"not valid JSON: {exc}") from None
    if text_depth_exceeds(text):
        raise request_error("invalid_json", "body", too_deep)
    return IngestPayload(data=data, text=text, text_checked=_UNSTORABLE_ESCAPE.search(text) is None)
