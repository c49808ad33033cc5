"""Logo files: checked by opening them as images, stored under the data directory, served back.

A logo is trusted by what Pillow finds inside it, never by its name or the type the browser
claims: a text file renamed ``.png`` is refused. Stored names are random, so nothing a person
types ever becomes part of a path on disk.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from catalogue.commons import LOGO_TYPES
from catalogue.errors import N_, InvalidField

LOGO_DIRECTORY = "logos"
# Larger than any sensible logo; also what keeps a small, crafted file from inflating in memory.
MAX_LOGO_PIXELS = 4096 * 4096
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp|gif)$")


def logo_extension(content: bytes, max_bytes: int) -> str:
    """The extension to store ``content`` under, or InvalidField("logo") saying what is wrong."""
    if len(content) > max_bytes:
        raise InvalidField(
            "logo", N_("The logo is too large: at most %(max)d kB."), max=max_bytes // 1024
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                image_format = image.format or ""
                width, height = image.size
                image.verify()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ):
        raise InvalidField("logo", N_("The logo must be a PNG, JPEG, WebP or GIF image.")) from None
    if image_format not in LOGO_TYPES:
        raise InvalidField("logo", N_("The logo must be a PNG, JPEG, WebP or GIF image."))
    if width * height > MAX_LOGO_PIXELS:
        raise InvalidField("logo", N_("The logo is too large: at most 4096 × 4096 pixels."))
    return LOGO_TYPES[image_format]


def logo_directory(data_dir: Path) -> Path:
    return data_dir / LOGO_DIRECTORY


def store_logo(data_dir: Path, content: bytes, extension: str) -> str:
    """Write an already checked logo under a new random name, and return that name."""
    directory = logo_directory(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{extension}"
    (directory / name).write_bytes(content)
    return name


def logo_path(data_dir: Path, name: str) -> Path | None:
    """Where a stored logo is, or None for any name this module could not have made."""
    if not STORED_NAME.fullmatch(name):
        return None
    path = logo_directory(data_dir) / name
    return path if path.is_file() else None


def content_type(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]


def delete_logo(data_dir: Path, name: str | None) -> None:
    """Remove a logo that nothing shows any more (a replaced one); unknown names are ignored."""
    path = logo_path(data_dir, name) if name else None
    if path is not None:
        path.unlink(missing_ok=True)
