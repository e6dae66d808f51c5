"""The one source of configuration: the process environment, over a local `.env` file
(DJANGO_ENV_FILE, default `./.env` of the project), which never overrides a variable the
environment already has. Read by the Django settings and by gunicorn.conf.py alike,
which gunicorn loads before Django: no Django import here."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def env_load() -> environ.Env:
    env = environ.Env()
    environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
    return env
