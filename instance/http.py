"""Small request/response helpers shared by the views: content negotiation and safe redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

JSON_TYPES = ("application/json", "application/activity+json", "application/ld+json")


def wants_json(request: Request) -> bool:
    """True when the client prefers JSON to HTML (by Accept q-values, HTML winning ties)."""
    best_json, best_html = 0.0, 0.0
    for part in request.headers.get("accept", "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media in JSON_TYPES:
            best_json = max(best_json, quality)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
    return best_json > best_html


def safe_next(target: str | None, fallback: str = "/") -> str:
    """A local path to go back to; anything pointing elsewhere becomes ``fallback``."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target:
        return fallback
    return target


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
