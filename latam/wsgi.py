"""WSGI entry point: `gunicorn latam.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "latam.settings")

application = get_wsgi_application()
