"""Whole-image sets with boxes (../shared/train/scenes/README.md): reading and checking labels.jsonl, the stored
pixels, a fixed hold-out. Torch-free: the trainer and the ONNX evaluation path share it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

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
    """The images of a folder with their regions (`crnn_ocr.detect.scoring.read_labels` checks every record);
    DatasetError for a missing image or an empty set. Quads of more than four points keep their first four."""
    from crnn_ocr.detect.scoring import read_labels

    folder = Path(folder)
    images = []
    for n, record in enumerate(read_labels(folder), 1):
        image = folder / record["image"]
        if not image.is_file():
            raise DatasetError(f"{folder / LABELS_FILE}:{n}: image {image} is missing")
        regions = [Region(np.asarray(r["quad"], np.float32)[:4], r["level"], bool(r.get("ignore", False)))
                   for r in record["regions"]]
        images.append(SceneImage(image, regions))
    if not images:
        raise DatasetError(f"{folder / LABELS_FILE}: no images")
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
