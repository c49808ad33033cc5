"""ActivityStreams media types and the JSON-LD contexts our documents name."""

from __future__ import annotations

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

ACTIVITY_JSON = "application/activity+json"
LD_JSON_PROFILE = f'application/ld+json; profile="{AS_CONTEXT}"'
# What we send as Accept when fetching: the same as Mastodon.
FETCH_ACCEPT = f"{ACTIVITY_JSON}, {LD_JSON_PROFILE}"


def wants_activity_json(accept: str) -> bool:
    """Whether an Accept header asks for ActivityStreams rather than the HTML page.

    ``application/activity+json`` or ``application/ld+json`` with the ActivityStreams profile
    (or with no profile: some servers send it bare); a browser's ``text/html`` wins when it
    comes with a higher quality.
    """
    best_as, best_html = -1.0, -1.0
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        kind = pieces[0].lower()
        quality = 1.0
        profile = None
        for parameter in pieces[1:]:
            key, _, value = parameter.partition("=")
            key = key.strip().lower()
            value = value.strip().strip('"')
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif key == "profile":
                profile = value
        if kind == ACTIVITY_JSON or (
            kind == "application/ld+json" and (profile is None or AS_CONTEXT in profile)
        ):
            best_as = max(best_as, quality)
        elif kind in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
    return best_as > 0 and best_as >= best_html
