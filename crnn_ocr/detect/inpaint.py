"""Photos with their text painted out, as backgrounds for synthetic scene text. Torch-free.

Every labelled region (ignore ones too) is grown by a fifth of its height, then filled from its surroundings by
`cv2.inpaint`; a little noise matching the photo's grain keeps the patch from looking smeared. The cleaned
photos are cached in a folder once (a manifest names the source and its files), so workers only read them.

>>> import numpy as np
>>> photo = np.full((40, 80, 3), 200, np.uint8); photo[15:25, 20:60] = 0
>>> clean = paint_out_text(photo, [[[20, 15], [60, 15], [60, 25], [20, 25]]], rng=np.random.default_rng(0))
>>> int(clean[20, 40].min()) > 150
True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.detect.scoring import read_labels
from crnn_ocr.errors import DatasetError
from crnn_ocr.files import check_replaceable, discard, staging_path, swap_in

MANIFEST = "manifest.json"
GENERATOR = "crnn_ocr.detect.inpaint"
CACHE_VERSION = 1


def text_mask(shape: tuple[int, int], quads: Sequence, grow: float = 0.2, min_grow: int = 3) -> np.ndarray:
    """A uint8 mask (255 = text) of `quads`, each grown by `grow` times its short side (at least `min_grow` px)."""
    mask = np.zeros(shape[:2], np.uint8)
    for quad in quads:
        pts = np.asarray(quad, np.float32).reshape(-1, 2)
        short = min(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[1]))
        margin = max(min_grow, int(round(grow * short)))
        ipts = np.round(pts).astype(np.int32)
        cv2.fillPoly(mask, [ipts], 255)
        cv2.polylines(mask, [ipts], True, 255, thickness=2 * margin + 1)
    return mask


def paint_out_text(image: np.ndarray, quads: Sequence, radius: int = 5, grow: float = 0.2,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """`image` (uint8 BGR or gray) with the text inside `quads` filled in from the surroundings."""
    mask = text_mask(image.shape, quads, grow)
    if not mask.any():
        return image.copy()
    clean = cv2.inpaint(image, mask, radius, cv2.INPAINT_TELEA)
    if rng is not None:
        grain = float(np.std(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image,
                                           cv2.CV_32F)[mask == 0])) / 4 if (mask == 0).any() else 0.0
        noise = rng.normal(0, min(grain, 12.0), size=clean.shape).astype(np.float32)
        inside = (mask > 0)[..., None] if clean.ndim == 3 else mask > 0
        clean = np.where(inside, np.clip(clean.astype(np.float32) + noise, 0, 255), clean).astype(np.uint8)
    return clean


def _is_our_cache(path: Path) -> bool:
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        return json.loads((path / MANIFEST).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _source_key(photos: Path, records: list[dict]) -> str:
    digest = hashlib.sha1(f"{CACHE_VERSION}|{photos.resolve()}".encode())
    for record in records:
        st = (photos / record["image"]).stat()
        digest.update(f"|{record['image']}|{st.st_size}|{st.st_mtime_ns}|{len(record['regions'])}".encode())
    return digest.hexdigest()


def default_cache(photos: str | Path) -> Path:
    """Where the cleaned backgrounds of `photos` are cached by default (under XDG_CACHE_HOME or ~/.cache)."""
    photos = Path(photos).resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    tag = hashlib.sha1(str(photos).encode()).hexdigest()[:8]
    return base / "crnn_ocr" / "scene_backgrounds" / f"{photos.name}-{tag}"


def prepare_backgrounds(photos: str | Path, cache: str | Path | None = None) -> list[Path]:
    """Paint the text out of every photo of a whole-image set (`photos`: images/ and labels.jsonl), once.

    Args:
        photos: a training set in the labels.jsonl layout; never an evaluation set (under shared/eval).
        cache: the folder the cleaned photos go to (default: `default_cache(photos)`). Reused while the source
            is unchanged; rebuilt (and replaced) when it changed. A folder that is not such a cache is refused.

    Returns:
        The cleaned photos (JPEG files in `cache`), sorted by name.

    Raises:
        DatasetError: `photos` is unreadable or an evaluation set, or `cache` is a foreign folder.
    """
    photos = Path(photos)
    if "shared/eval" in str(photos.resolve()).replace("\\", "/"):
        raise DatasetError(f"{photos}: refusing to use an evaluation set (shared/eval) for training backgrounds")
    records = read_labels(photos)
    if not records:
        raise DatasetError(f"{photos}: no labelled photos")
    cache = Path(cache) if cache is not None else default_cache(photos)
    key = _source_key(photos, records)
    names = [f"{k:04d}_{Path(r['image']).stem}.jpg" for k, r in enumerate(records)]
    if _is_our_cache(cache):
        manifest = json.loads((cache / MANIFEST).read_text())
        if manifest.get("key") == key and all((cache / n).is_file() for n in names):
            return [cache / n for n in names]
    check_replaceable(cache, True, lambda p: _is_our_cache(p) or _is_empty_folder(p), "a background cache", protected=[photos])
    staged = staging_path(cache)
    discard(staged)
    staged.mkdir(parents=True)
    try:
        rng = np.random.default_rng(0)
        for name, record in zip(names, records):
            image = cv2.imread(str(photos / record["image"]), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"{photos / record['image']}: cannot read the image")
            clean = paint_out_text(image, [r["quad"] for r in record["regions"]], rng=rng)
            if not cv2.imwrite(str(staged / name), clean, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise DatasetError(f"{staged / name}: cannot write")
        manifest = {"generator": GENERATOR, "version": CACHE_VERSION, "source": str(photos.resolve()), "key": key,
                    "images": names}
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=1))
        swap_in(staged, cache)
    except BaseException:
        discard(staged)
        raise
    return [cache / n for n in names]
