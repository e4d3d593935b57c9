"""One safe image reader for every input kind: paths, bytes, PIL images and numpy arrays.

>>> import numpy as np
>>> read_image(np.zeros((4, 6, 3), np.uint8)).shape
(4, 6)
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crnn_ocr.errors import ImageError, ImageTooLargeError

ImageInput = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray]

DEFAULT_MAX_PIXELS = 120_000_000  # a 100-megapixel photo reads; decompression bombs stay out
DEFAULT_MAX_BYTES = 256 << 20  # an encoded image (or stdin) larger than this is refused before it is read
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


def read_image(source: ImageInput, channels: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an image as uint8: (H, W) for one channel, (H, W, 3) RGB for three.

    EXIF orientation is applied; palette, alpha (composited on white), 16-bit, CMYK, bilevel and gray inputs
    are converted. Raises ImageError (or ImageTooLargeError past `max_pixels` pixels or `max_bytes` bytes of
    file) with the reason.
    """
    if channels not in (1, 3):
        raise ValueError("channels must be 1 or 3")
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, channels, max_pixels, name)
    image = source if isinstance(source, Image.Image) else _open(source, name, max_pixels, max_bytes)
    _check_size(image.size[0], image.size[1], max_pixels, name)
    try:
        image = ImageOps.exif_transpose(image) or image
        return _to_channels(image, channels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e})") from e


def read_file_bounded(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a file, refusing (ImageTooLargeError) one larger than `max_bytes` before reading it; a
    device or pipe is read up to the limit only. Every failure is an ImageError naming the cause."""
    name = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except OSError as e:  # too long a name, a symlink loop, a folder we may not enter
        raise ImageError(f"{name}: cannot read ({e.strerror})") from e
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name}: is a directory, not an image")
    if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
        raise ImageTooLargeError(f"{name}: file too large ({info.st_size} bytes, limit {max_bytes})")
    try:
        with open(path, "rb") as f:
            return read_stream_bounded(f, max_bytes, name)
    except OSError as e:
        raise ImageError(f"{name}: cannot read ({e.strerror})") from e


def read_stream_bounded(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES, name: str = "stdin") -> bytes:
    """Up to `max_bytes` from a stream (stdin, a pipe, a device); more than that is an ImageTooLargeError."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{name}: more than {max_bytes} bytes")
    return data


def _open(source: ImageInput, name: str, max_pixels: int, max_bytes: int = DEFAULT_MAX_BYTES) -> Image.Image:
    if isinstance(source, (str, Path)):
        data = read_file_bounded(source, max_bytes)
    else:
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"{name}: too large ({len(data)} bytes, limit {max_bytes})")
    if not data:
        raise ImageError(f"{name}: empty file")
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # the guard is ours, from the header and before decoding (PIL's stops at 89 MP)
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
    finally:
        Image.MAX_IMAGE_PIXELS = pil_limit
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
    return [p for p, _ in scan_images(paths) if p is not None]


def scan_images(paths: list[str | Path], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[tuple[Path | None, str | None]]:
    """Expand directories (recursively, sorted) into (file, None); what cannot be listed or read inside them
    (a folder without permission, a broken link, a pipe named like an image) becomes (None, message), so a
    caller reports it and goes on. Files given directly are kept as given."""
    out: list[tuple[Path | None, str | None]] = []
    for p in map(Path, paths):
        try:
            is_dir = p.is_dir()
        except OSError as e:
            out.append((None, f"{p}: cannot read ({e.strerror})"))
            continue
        if not is_dir:
            out.append((p, None))
            continue
        found, problems = _scan_folder(p, suffixes)
        out.extend((f, None) for f in found)
        out.extend((None, m) for m in problems)
    return out


def _scan_folder(folder: Path, suffixes: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    problems: list[str] = []
    found: list[Path] = []

    def unlistable(e: OSError) -> None:
        problems.append(f"{e.filename}: cannot list ({e.strerror})")

    for root, dirs, files in os.walk(folder, onerror=unlistable):
        dirs.sort()
        for f in files:
            path = Path(root) / f
            if path.suffix.lower() not in suffixes:
                continue
            try:
                info = path.stat()
            except OSError as e:
                problems.append(f"{path}: cannot read ({e.strerror or 'broken link'})")
                continue
            if stat.S_ISREG(info.st_mode):
                found.append(path)
            else:
                problems.append(f"{path}: not a regular file")
    return sorted(found), problems
