"""Screenshot one page of a running Terreau instance with Debian's Chromium.

    python scripts/screenshot.py http://127.0.0.1:8000/orgs docs/orgs.png [--full-page]

For documentation and for a quick look at a change without opening a browser. It drives the
system's Chromium (``apt-get install chromium``) through Playwright, with the same flags as the
browser tests, so it downloads nothing and the browser makes no traffic of its own. It needs a
running instance (``terreau serve``); it does not start one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Error, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
#: Also used by tests/browser/conftest.py, so the tests run the browser the same way.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # containers and CI runners rarely allow Chromium's user-namespace sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No traffic of the browser's own (updates, safe browsing, sync): only the pages we open.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def screenshot(
    url: str,
    output: Path,
    *,
    full_page: bool = False,
    locale: str = "en-US",
    chromium: Path = CHROMIUM,
) -> None:
    """Load ``url`` (waiting until the network is idle) and save a PNG of it to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport=VIEWPORT, locale=locale)
            page = context.new_page()
            response = page.goto(url, wait_until="networkidle")
            if response is not None and response.status >= 400:
                print(f"warning: {url} answered {response.status}", file=sys.stderr)
            page.screenshot(path=str(output), full_page=full_page)
            context.close()
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the page to capture, e.g. http://127.0.0.1:8000/orgs")
    parser.add_argument("output", type=Path, help="where to write the PNG")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the viewport")
    parser.add_argument("--locale", default="en-US", help="the browser's language (default en-US)")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="the Chromium binary")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("url must start with http:// or https://")
    if not args.chromium.exists():
        parser.error(f"{args.chromium} is missing: apt-get install chromium")
    try:
        screenshot(
            args.url,
            args.output,
            full_page=args.full_page,
            locale=args.locale,
            chromium=args.chromium,
        )
    except Error as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
