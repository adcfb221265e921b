"""A refused ingest request and the shape of its 400 about the request as a whole."""

from typing import Any


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
