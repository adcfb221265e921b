"""WSGI entry point (gunicorn swampclub.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swampclub.settings")

application = get_wsgi_application()
