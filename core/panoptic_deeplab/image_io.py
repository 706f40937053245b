"""Robust image loading: any file a user may point at becomes a uint8 RGB ``[H, W, 3]`` array or an
``ImageError`` that names the file, the problem and the fix.

Rules (applied in this order):

* empty files, non-images and unsupported formats are refused;
* the pixel count is read from the header and checked against ``max_pixels`` *before* decoding,
  so a decompression bomb (e.g. a 20000x20000 PNG of a few kilobytes) never allocates its pixels;
* truncated or corrupt files are refused (Pillow's strict decoding; nothing is guessed);
* the EXIF orientation is applied, so the array looks like the photo in a viewer;
* the first frame of multi-frame files (GIF, TIFF) is used;
* colour handling: grayscale is replicated to three channels; 16-bit images are scaled to 8 bit
  (``round(v * 255 / 65535)``); an alpha channel is composited onto white (transparent areas
  become white rather than whatever colour the encoder left under them); CMYK (also Adobe's
  inverted CMYK JPEGs) and palette images are converted by Pillow.

NumPy/Pillow only, no TensorFlow.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

# 100 megapixels: a 12000x8000 camera photo (96 MP) fits, a 20000x20000 bomb does not. An image
# at the limit costs 300 MB as RGB.
DEFAULT_MAX_PIXELS = 100_000_000

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")


def load_image(
    source: str | Path | bytes | bytearray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> np.ndarray:
    """Decode ``source`` (a path or the encoded bytes) into a uint8 RGB array ``[H, W, 3]``.

    ``name`` labels the image in error messages (defaults to the path, or ``<bytes>``).
    Raises ``ImageError`` for anything that is not a usable image.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            raise ImageError(f"{label}: {what}. Give the path of an image file (JPEG, PNG, ...).")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ImageError(
                f"{label}: cannot be read ({err.strerror or err}). Check the file's permissions."
            ) from None
    if not data:
        raise ImageError(
            f"{label}: the file is empty (0 bytes). Re-export or re-download the image."
        )

    image = _open(data, label)
    _check_size(image.size, label, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(
            f"{label}: the image data is truncated or corrupt ({err}). Re-export or re-download "
            "the image."
        ) from None
    image = _apply_exif_orientation(image, label)
    return _to_rgb_uint8(image, label)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) from the file header (no decoding, no EXIF rotation: the size the data
    pipeline decodes to), or None if unreadable."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
        return None


def list_images(path: str | Path) -> list[Path]:
    """The image files named by ``path``: the file itself, or the images directly inside a
    directory (by suffix, sorted by name). Raises ``ImageError`` when there are none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ImageError(f"{path}: not found. Give an image file or a directory of images.")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(
            f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this directory. "
            "Point at the folder that holds them."
        )
    return files


def _open(data: bytes, label: str) -> Image.Image:
    with warnings.catch_warnings():
        # We apply our own limit below; Pillow's warning would only duplicate it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as err:
            raise ImageError(
                f"{label}: refused as a possible decompression bomb ({err}). "
                "Downscale the image first."
            ) from None
        except UnidentifiedImageError:
            raise ImageError(
                f"{label}: not an image, or a format Pillow cannot read. Convert it to PNG or JPEG."
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise ImageError(
                f"{label}: the image header is truncated or corrupt ({err}). Re-export or "
                "re-download the image."
            ) from None


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(
            f"{label}: the header gives an empty image ({width}x{height}). Re-export the image."
        )
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} pixels (a possible decompression bomb; nothing was decoded). "
            "Downscale the image, or raise max_pixels if you trust the file."
        )


def _apply_exif_orientation(image: Image.Image, label: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose an otherwise fine image
        warnings.warn(
            f"{label}: unreadable EXIF orientation; the image is used as stored.", stacklevel=3
        )
        return image


def _to_rgb_uint8(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (PNG, TIFF); Pillow also reports some as 32-bit "I".
        values = np.asarray(image).astype(np.int64)
        if values.max(initial=0) > 65535 or values.min(initial=0) < 0:
            raise ImageError(
                f"{label}: 32-bit integer images are not supported. "
                "Convert the image to 8 or 16 bit."
            )
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "F":
        raise ImageError(
            f"{label}: floating-point images are not supported. Convert the image to 8 or 16 bit."
        )
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)
