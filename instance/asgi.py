"""The ASGI entry point for servers: ``uvicorn --factory instance.asgi:app``.

Settings come from ``$TERREAU_CONFIG`` (default ./instance.toml) and ``TERREAU_*`` variables.
"""

from starlette.applications import Starlette

from instance.app import create_app
from instance.config import load_settings


def app() -> Starlette:
    return create_app(load_settings())
