"""Where the files that live beside the packages are found: in a checkout, or inside a wheel.

``templates/`` and ``instance.example.toml`` sit at the top of the repository (the layout every
contributor sees); a built wheel copies them under ``instance/_bundled/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_bundled" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} is neither in the checkout nor bundled in the package")
