"""One safe image reader for every input kind: paths, bytes, PIL images and numpy arrays.

>>> import numpy as np
>>> read_image(np.zeros((4, 6, 3), np.uint8)).shape
(4, 6)
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crnn_ocr.errors import ImageError, ImageTooLargeError

ImageInput = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray]

DEFAULT_MAX_PIXELS = 64_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pbm", ".pgm", ".ppm")


def describe(source: ImageInput) -> str:
    """A short name for an input, for error messages."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"array{source.shape}"
    if isinstance(source, Image.Image):
        return f"PIL image {source.size}"
    return f"{len(source)} bytes"


def read_image(source: ImageInput, channels: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as uint8: (H, W) for one channel, (H, W, 3) RGB for three.

    EXIF orientation is applied; palette, alpha (composited on white), 16-bit, CMYK, bilevel and gray inputs
    are converted. Raises ImageError (or ImageTooLargeError past `max_pixels`) with the reason.
    """
    if channels not in (1, 3):
        raise ValueError("channels must be 1 or 3")
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, channels, max_pixels, name)
    image = source if isinstance(source, Image.Image) else _open(source, name, max_pixels)
    _check_size(image.size[0], image.size[1], max_pixels, name)
    try:
        image = ImageOps.exif_transpose(image) or image
        return _to_channels(image, channels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e})") from e


def _open(source: ImageInput, name: str, max_pixels: int) -> Image.Image:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"{name}: cannot read ({e.strerror})") from e
    else:
        data = bytes(source)
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(image.size[0], image.size[1], max_pixels, name)
            image.load()
    except ImageTooLargeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"{name}: image too large ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{name}: not an image or an unsupported format") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e})") from e
    return image


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: image too large ({width}x{height} = {width * height} pixels, limit {max_pixels})"
        )


def _to_channels(image: Image.Image, channels: int) -> np.ndarray:
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return gray if channels == 1 else np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA")
    elif mode == "CMYK":
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def _from_array(array: np.ndarray, channels: int, max_pixels: int, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected (H, W), (H, W, 3) or (H, W, 4)")
    _check_size(array.shape[1], array.shape[0], max_pixels, name)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageError(f"{name}: float images must hold finite values in [0, 1]")
        array = (array * 255 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    if channels == 1 and array.ndim == 3:
        return np.asarray(Image.fromarray(np.ascontiguousarray(array), "RGB").convert("L"))
    if channels == 3 and array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array)


def find_images(paths: list[str | Path]) -> list[Path]:
    """Expand directories (recursively, sorted) into image files; files are kept as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    return out
