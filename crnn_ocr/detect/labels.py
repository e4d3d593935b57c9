"""Whole-image sets with boxes (../shared/train/scenes/README.md): reading and checking labels.jsonl, the stored
pixels, a fixed hold-out. Torch-free: the trainer and the ONNX evaluation path share it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.detect.config import LEVELS
from crnn_ocr.errors import DatasetError

LABELS_FILE = "labels.jsonl"


@dataclass
class Region:
    quad: np.ndarray  # (4, 2) float32, image pixels
    level: str
    ignore: bool = False


@dataclass
class SceneImage:
    path: Path
    regions: list[Region] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def as_records(self) -> list[dict]:
        """Regions as labels.jsonl writes them (what the scorers take)."""
        return [{"quad": r.quad.tolist(), "text": None, "level": r.level, "ignore": r.ignore} for r in self.regions]


def read_scene_labels(folder: str | Path) -> list[SceneImage]:
    """The images of a folder with their regions; DatasetError naming the line for anything malformed."""
    folder = Path(folder)
    path = folder / LABELS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    images = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
            regions = []
            for k, r in enumerate(record["regions"]):
                quad = np.asarray(r["quad"], np.float32)
                if quad.shape != (4, 2) or not np.isfinite(quad).all():
                    raise DatasetError(f"{where} region {k}: quad must be 4 finite [x, y] points")
                if r.get("level") not in LEVELS:
                    raise DatasetError(f"{where} region {k}: level must be one of {', '.join(LEVELS)}")
                regions.append(Region(quad, r["level"], bool(r.get("ignore", False))))
            image = folder / record["image"]
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{where}: not a record of the scenes layout ({type(e).__name__}: {e})") from e
        if not image.is_file():
            raise DatasetError(f"{where}: image {image} is missing")
        images.append(SceneImage(image, regions))
    if not images:
        raise DatasetError(f"{path}: no images")
    return images


def split_holdout(images: list[SceneImage], count: int) -> tuple[list[SceneImage], list[SceneImage]]:
    """(train, held out): the `count` images whose names hash lowest are held out, the same ones in every run
    and whatever order the labels file lists them in."""
    if count <= 0:
        return images, []
    if count >= len(images):
        raise DatasetError(f"cannot hold out {count} of {len(images)} images")
    order = sorted(images, key=lambda im: hashlib.sha1(im.name.encode()).hexdigest())
    held = {id(im) for im in order[:count]}
    return [im for im in images if id(im) not in held], [im for im in images if id(im) in held]


def read_rgb(path: Path) -> np.ndarray:
    """The stored pixels (labels are in them: EXIF orientation is not applied), RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise DatasetError(f"{path}: cannot decode image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
