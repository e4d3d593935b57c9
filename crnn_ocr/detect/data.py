"""Training samples for the detector: whole images with boxes, augmented, cropped and turned into DB targets.

Sources are folders laid out as ../shared/train/scenes/README.md says (`images/`, `labels.jsonl`). Sample `n` of
a run is a pure function of (seed, n): a source drawn by weight, an image drawn uniformly, then random 90-degree
turn (document sets), scale, small rotation, a crop of `train_size` that cuts as few boxes as it can, colour
jitter. So a run resumes exactly from its step count alone, with or without loader workers.

A crop that cuts a box keeps it as text when at least `KEEP_VISIBLE` of its area is inside (its kernel is then
computed from the whole box), else marks the visible part don't-care. Images without text are negatives.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyclipper
import torch

from crnn_ocr.detect.config import LEVELS, DetectorConfig, DetectTrainConfig, SceneSource
from crnn_ocr.detect.labels import Region, SceneImage, read_rgb, read_scene_labels, split_holdout
from crnn_ocr.detect.runtime import normalize_image
from crnn_ocr.detect.targets import TextRegion, empty_targets, make_targets, polygon_area
from crnn_ocr.errors import DatasetError

KEEP_VISIBLE = 0.9  # a box cut by the crop stays text when this share of it is visible; less: don't care
TARGET_KEYS = ("shrink", "shrink_mask", "thresh", "thresh_mask")


@dataclass
class SceneFolder:
    """An opened source: its training images, held-out images and the levels it supervises."""

    source: SceneSource
    images: list[SceneImage]
    held: list[SceneImage]
    levels: list[str]

    @property
    def name(self) -> str:
        return Path(self.source.path).name


def open_scene_folder(source: SceneSource) -> SceneFolder:
    images = read_scene_labels(source.path)
    found = {r.level for im in images for r in im.regions}
    levels = list(source.levels) if source.levels else [lv for lv in LEVELS if lv in found]
    if not levels:
        raise DatasetError(f"{source.path}: no region says its level; set `levels` for this source")
    train, held = split_holdout(images, source.holdout)
    return SceneFolder(source, train, held, levels)


def _rot90(image: np.ndarray, quads: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn counter-clockwise by k * 90 degrees; quads (N, 4, 2) follow (corner order rotates with them, so the
    first corner may no longer be the top-left; targets do not care)."""
    h, w = image.shape[:2]
    for _ in range(k % 4):
        quads = np.stack([quads[..., 1], (w - 1) - quads[..., 0]], axis=-1)  # (x, y) -> (y, w - 1 - x)
        image = np.ascontiguousarray(np.rot90(image))
        h, w = w, h
    return image, quads


def _visible_fraction(quad: np.ndarray, window: tuple[float, float, float, float]) -> float:
    """Share of the quad's area inside the window (x0, y0, x1, y1)."""
    area = polygon_area(quad)
    if area <= 0:
        return 0.0
    x0, y0, x1, y1 = window
    clip = pyclipper.Pyclipper()
    scale = 16.0
    clip.AddPath(np.round(quad * scale).astype(np.int64).tolist(), pyclipper.PT_SUBJECT, True)
    clip.AddPath((np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) * scale).astype(np.int64).tolist(), pyclipper.PT_CLIP, True)
    try:
        parts = clip.Execute(pyclipper.CT_INTERSECTION)
    except pyclipper.ClipperException:
        return 0.0
    return sum(polygon_area(np.asarray(p, np.float64) / scale) for p in parts) / area


class DetectionDataset(torch.utils.data.Dataset):
    """Item `n` -> {"image" (C, S, S) float32, "shrink"/"shrink_mask"/"thresh"/"thresh_mask" (L, S/s, S/s),
    "supervised" (L,)}, S = `model.train_size`, s = `loss_stride`, L = len(model.levels). Deterministic in n.

    Args:
        folders: opened sources (`open_scene_folder`).
        cfg: the run's config (augmentation ranges, loss stride, seed) and its model config.
    """

    def __init__(self, folders: Sequence[SceneFolder], cfg: DetectTrainConfig):
        self.folders = [f for f in folders if f.images]
        if not self.folders:
            raise DatasetError("no training images (every source empty or held out)")
        self.cfg = cfg
        self.model: DetectorConfig = cfg.model
        weights = np.array([f.source.weight for f in self.folders], np.float64)
        self.probs = weights / weights.sum()

    def __len__(self) -> int:  # samples are drawn, not enumerated; the sampler decides how many
        return 1 << 62

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, int(n)])
        for _ in range(8):  # an unreadable image: draw another (deterministically), warn once
            folder = self.folders[int(rng.choice(len(self.folders), p=self.probs))]
            scene = folder.images[int(rng.integers(len(folder.images)))]
            try:
                image = read_rgb(scene.path)
                break
            except DatasetError as e:
                warnings.warn(str(e), stacklevel=2)
        else:
            raise DatasetError("eight unreadable images in a row; check the training folders")
        image, regions = self.augment(image, scene.regions, folder.source, rng)
        return self.to_sample(image, regions, folder, self.cfg.loss_stride)

    # ----- geometry -----
    def augment(self, image: np.ndarray, regions: list[Region], source: SceneSource,
                rng: np.random.Generator) -> tuple[np.ndarray, list[Region]]:
        """Turn, scale, rotate and crop to train_size x train_size in one warp; regions follow."""
        cfg, size = self.cfg, self.model.train_size
        quads = np.array([r.quad for r in regions], np.float64).reshape(-1, 4, 2)
        if source.rotate90 > 0 and rng.random() < source.rotate90:
            image, quads = _rot90(image, quads, int(rng.integers(1, 4)))
        h, w = image.shape[:2]
        base = min(1.0, self.model.max_side / max(h, w))  # the scale inference would use
        lo, hi = cfg.scale_range
        scale = base * math.exp(rng.uniform(math.log(lo), math.log(hi)))
        angle = rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees) if rng.random() < cfg.rotate_prob else 0.0
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)  # (2, 3): scale and rotate about the centre
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) @ m[:, :2].T + m[:, 2]
        m[:, 2] -= corners.min(axis=0)  # the transformed image starts at (0, 0)
        tw, th = corners.max(axis=0) - corners.min(axis=0)
        moved = quads @ m[:, :2].T + m[:, 2] if len(quads) else quads
        x0, y0 = self._choose_crop(moved, [r.ignore for r in regions], (tw, th), size, rng, source.complete)
        m[:, 2] -= (x0, y0)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))  # padding: a flat colour, a plain negative
        out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
        window = (-0.5, -0.5, size - 0.5, size - 0.5)
        kept: list[Region] = []
        for region, quad in zip(regions, moved - (x0, y0) if len(moved) else moved):
            lo_xy, hi_xy = quad.min(axis=0), quad.max(axis=0)
            if hi_xy[0] < window[0] or hi_xy[1] < window[1] or lo_xy[0] > window[2] or lo_xy[1] > window[3]:
                continue
            inside = lo_xy[0] >= window[0] and lo_xy[1] >= window[1] and hi_xy[0] <= window[2] and hi_xy[1] <= window[3]
            ignore = region.ignore or (not inside and _visible_fraction(quad, window) < KEEP_VISIBLE)
            kept.append(Region(quad.astype(np.float32), region.level, ignore))
        return self._photometric(out, rng), kept

    def _choose_crop(self, quads: np.ndarray, ignore: list[bool], extent: tuple[float, float], size: int,
                     rng: np.random.Generator, complete: bool = True) -> tuple[float, float]:
        """Of `crop_tries` windows, the one that holds a whole box and cuts the fewest (ties: the first). Half the
        tries (all of them for incomplete sources, whose other pixels teach nothing) are placed around a random
        box; the rest anywhere, so background is seen too."""
        tw, th = extent
        care = quads[[not i for i in ignore]] if len(quads) else quads
        lo, hi = (care.min(axis=1), care.max(axis=1)) if len(care) else (None, None)
        xr, yr = (min(0.0, tw - size), max(0.0, tw - size)), (min(0.0, th - size), max(0.0, th - size))
        best, best_key = (0.0, 0.0), None
        for i in range(self.cfg.crop_tries):
            if len(care) and (i % 2 == 0 or not complete):
                k = int(rng.integers(len(care)))
                # windows holding box k (or inside it, when it is larger than the window), within the valid range
                x0 = rng.uniform(*sorted((hi[k, 0] - size, lo[k, 0])))
                y0 = rng.uniform(*sorted((hi[k, 1] - size, lo[k, 1])))
                x0, y0 = float(np.clip(x0, *xr)), float(np.clip(y0, *yr))
            else:  # windows may stick out of a small image (padding) but always overlap it
                x0, y0 = rng.uniform(*xr), rng.uniform(*yr)
            if len(care) == 0:
                return x0, y0
            inside = (lo[:, 0] >= x0) & (lo[:, 1] >= y0) & (hi[:, 0] <= x0 + size) & (hi[:, 1] <= y0 + size)
            overlap = (hi[:, 0] > x0) & (hi[:, 1] > y0) & (lo[:, 0] < x0 + size) & (lo[:, 1] < y0 + size)
            key = (not inside.any(), int((overlap & ~inside).sum()))
            if best_key is None or key < best_key:
                best, best_key = (x0, y0), key
        return best

    def _photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Brightness, contrast and saturation jitter, sometimes gray or blurred."""
        strength = self.cfg.color_jitter
        if strength <= 0:
            return image
        x = image.astype(np.float32)
        gray = x.mean(axis=2, keepdims=True)
        if rng.random() < 0.1:
            x = np.repeat(gray, 3, axis=2)
        else:
            x = gray + (x - gray) * rng.uniform(1 - strength, 1 + strength)  # saturation
        x = (x - x.mean()) * rng.uniform(1 - strength, 1 + strength) + x.mean()  # contrast
        x = x + 255 * rng.uniform(-strength, strength) / 2  # brightness
        if rng.random() < 0.1:
            x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
        return np.clip(x, 0, 255).astype(np.uint8)

    # ----- targets -----
    def to_sample(self, image: np.ndarray, regions: list[Region], folder: SceneFolder, stride: int) -> dict[str, torch.Tensor]:
        levels = self.model.levels
        size = image.shape[:2]
        maps = {k: [] for k in TARGET_KEYS}
        supervised = np.zeros(len(levels), np.float32)
        for c, level in enumerate(levels):
            if level in folder.levels:
                supervised[c] = 1.0
                t = make_targets(size, [TextRegion(r.quad, r.ignore) for r in regions if r.level == level],
                                 self.model.shrink_ratio, stride, complete=folder.source.complete)
            else:
                t = empty_targets(size, stride)
            for k in TARGET_KEYS:
                maps[k].append(t[k])
        if self.model.channels == 1:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        sample = {"image": torch.from_numpy(normalize_image(image, self.model)), "supervised": torch.from_numpy(supervised)}
        sample.update({k: torch.from_numpy(np.stack(v)) for k, v in maps.items()})  # L x (h, w) -> (L, h, w)
        return sample


def open_training_folders(sources: Sequence[SceneSource], model: DetectorConfig, log=print) -> list[SceneFolder]:
    """Open every source; warn about (and drop) sources that supervise none of the model's levels."""
    out = []
    for source in sources:
        folder = open_scene_folder(source)
        if not set(folder.levels) & set(model.levels):
            log(f"warning: {source.path} labels {', '.join(folder.levels)} only; this detector predicts "
                f"{', '.join(model.levels)}: skipped")
            continue
        out.append(folder)
    return out
