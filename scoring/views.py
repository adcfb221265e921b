"""HTTP interfaces of the scoring app."""

from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from swampclub.http import json_error


@csrf_exempt
@require_POST
def ingest(request):
    """Telemetry ingest (SPEC §4)."""
    return json_error(503, "unavailable")
