"""Scoring a detector (checkpoint or ONNX file) on a folder of whole images with boxes: P / R / hmean at IoU 0.5.

Matching uses `crnn_ocr.detect.scoring.score_detections` (the project's ICDAR-protocol scorer) when it is
importable, else `match_detections` below, a minimal version of the same protocol: one-to-one greedy matching by
IoU, `ignore` regions never missed, and an unmatched prediction lying at least half inside ignore regions
counting neither way.

Torch-free except for scoring a `.pt` checkpoint (which imports torch then).

>>> gt = [{"quad": [[0, 0], [10, 0], [10, 5], [0, 5]], "level": "word", "ignore": False}]
>>> match_detections([np.array([[0, 0], [10, 0], [10, 6], [0, 6]])], gt)
{'tp': 1, 'fp': 0, 'fn': 0}
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.detect.config import DetectorConfig
from crnn_ocr.detect.labels import read_rgb, read_scene_labels
from crnn_ocr.detect.runtime import OnnxDetector, TextDetector
from crnn_ocr.errors import CheckpointError

IGNORE_AREA = 0.5  # an unmatched prediction this much inside ignore regions counts neither way


def _convex(points) -> np.ndarray:
    return cv2.convexHull(np.asarray(points, np.float32).reshape(-1, 2)).reshape(-1, 2)


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    area, _ = cv2.intersectConvexConvex(a, b)
    return max(float(area), 0.0)


def match_detections(predicted: Sequence[np.ndarray], regions: Sequence[dict], iou: float = 0.5,
                     level: str | None = None) -> dict[str, int]:
    """tp / fp / fn of one image (the fallback when crnn_ocr.detect.scoring is absent).

    Args:
        predicted: quads (4, 2).
        regions: ground truth as in labels.jsonl ({"quad", "level", "ignore"}).
        iou: the IoU a matched pair needs.
        level: only the regions of this level (None: all).
    """
    regions = [r for r in regions if level is None or r.get("level") == level]
    care = [_convex(r["quad"]) for r in regions if not r.get("ignore", False)]
    ignored = [_convex(r["quad"]) for r in regions if r.get("ignore", False)]
    preds = [_convex(q) for q in predicted]
    pairs = []
    for i, p in enumerate(preds):
        pa = cv2.contourArea(p)
        for j, g in enumerate(care):
            if p[:, 0].min() > g[:, 0].max() or g[:, 0].min() > p[:, 0].max() or \
                    p[:, 1].min() > g[:, 1].max() or g[:, 1].min() > p[:, 1].max():
                continue
            inter = _intersection(p, g)
            union = pa + cv2.contourArea(g) - inter
            if union > 0 and inter / union >= iou:
                pairs.append((inter / union, i, j))
    matched_p: set[int] = set()
    matched_g: set[int] = set()
    for _, i, j in sorted(pairs, key=lambda x: (-x[0], x[1], x[2])):
        if i not in matched_p and j not in matched_g:
            matched_p.add(i)
            matched_g.add(j)
    fp = 0
    for i, p in enumerate(preds):
        if i in matched_p:
            continue
        pa = cv2.contourArea(p)
        inside = sum(_intersection(p, g) for g in ignored) / pa if pa > 0 and ignored else 0.0
        fp += inside < IGNORE_AREA
    return {"tp": len(matched_p), "fp": fp, "fn": len(care) - len(matched_g)}


def _scorer() -> Callable[[list, list, float, str | None], dict[str, int]]:
    """The project's scorer when present (crnn_ocr.detect.scoring), adapted to tp/fp/fn; else ours."""
    try:
        from crnn_ocr.detect.scoring import score_detections
    except ImportError:
        return match_detections

    def score(predicted, regions, iou, level):
        counts = score_detections([q.tolist() for q in predicted], regions, iou=iou, level=level)
        return {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn}

    return score


def rates(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, hmean (a ratio with nothing to count is 1.0, as crnn_ocr.detect.scoring does)."""
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "hmean": 2 * p * r / (p + r) if p + r else 0.0}


def score_images(detector: TextDetector, images: Sequence[Any], levels: Sequence[str], iou: float = 0.5,
                 limit: int = 0) -> dict[str, Any]:
    """Run `detector` over `images` (crnn_ocr.detect.data.SceneImage) and score each level.

    Returns:
        {"images", "seconds_per_image", "levels": {level: {"tp", "fp", "fn", "precision", "recall", "hmean"}}}.
    """
    score = _scorer()
    images = list(images)[:limit] if limit else list(images)
    totals = {lv: {"tp": 0, "fp": 0, "fn": 0} for lv in levels}
    started = time.perf_counter()
    for scene in images:
        found = detector.detect(read_rgb(scene.path), levels=levels)
        records = scene.as_records()
        for lv in levels:
            counts = score([d.quad for d in found[lv]], records, iou, lv)
            for k in totals[lv]:
                totals[lv][k] += counts[k]
    elapsed = time.perf_counter() - started
    return {"images": len(images), "seconds_per_image": elapsed / max(len(images), 1),
            "levels": {lv: {**c, **rates(c["tp"], c["fp"], c["fn"])} for lv, c in totals.items()}}


class TorchDetector(TextDetector):
    """A detector running a torch model (eval mode, no gradients); same resize and post-processing as ONNX."""

    def __init__(self, model, cfg: DetectorConfig | None = None, max_side: int | None = None):
        import torch

        from crnn_ocr.detect.nets import DetectorMaps

        self.model = DetectorMaps(model).eval()
        self._torch = torch
        super().__init__(self._run, cfg or self.model.net.cfg, max_side)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        device = next(self.model.parameters()).device  # a model being trained on a GPU is scored there
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch).to(device)).float().cpu().numpy()


def load_any_detector(path: str | Path, threads: int = 1, max_side: int | None = None) -> TextDetector:
    """A detector from a `.onnx` file (onnxruntime, no torch) or a `.pt` checkpoint (torch)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return OnnxDetector(path, threads=threads, max_side=max_side)
    if path.suffix.lower() == ".pt":
        import torch

        from crnn_ocr.detect.nets import load_detector

        if threads:
            torch.set_num_threads(threads)
        model, cfg = load_detector(path)
        return TorchDetector(model, cfg, max_side)
    raise CheckpointError(f"{path}: a detector is a .onnx file or a .pt checkpoint")


def evaluate_detector(checkpoint_or_onnx: str | Path | TextDetector, folder: str | Path, levels: Sequence[str] | None = None,
                      iou: float = 0.5, limit: int = 0, max_side: int | None = None, threads: int = 1,
                      unclip_ratio: float | None = None, box_threshold: float | None = None) -> dict[str, Any]:
    """Detection precision, recall and hmean of a detector on a folder with labels.jsonl.

    Args:
        checkpoint_or_onnx: a `.pt` checkpoint, an exported `.onnx` file, or a detector object.
        folder: a whole-image set (images/ and labels.jsonl).
        levels: the levels to score (default: those the folder labels that the detector predicts).
        iou: the IoU a hit needs.
        limit: score the first `limit` images only (0: all).
        max_side: overrides the detector's inference size limit.
        threads: CPU threads.
        unclip_ratio, box_threshold: override the detector's post-processing (to tune them on held-out images).

    Returns:
        {"folder", "detector", "images", "seconds_per_image", "levels": {level: {tp, fp, fn, precision, recall,
        hmean}}, "hmean": mean over the levels}.

    >>> # evaluate_detector("runs/detector/best.pt", "../shared/eval/scenes/msra_td500_test")["levels"]["line"]
    """
    detector = checkpoint_or_onnx if isinstance(checkpoint_or_onnx, TextDetector) else \
        load_any_detector(checkpoint_or_onnx, threads, max_side)
    overrides = {k: v for k, v in (("unclip_ratio", unclip_ratio), ("box_threshold", box_threshold)) if v is not None}
    if overrides:
        detector = copy.copy(detector)  # the caller's detector keeps its settings; the session is shared
        detector.cfg = dataclasses.replace(detector.cfg, **overrides)
    images = read_scene_labels(folder)
    if levels is None:
        found = {r.level for im in images for r in im.regions}
        levels = [lv for lv in detector.cfg.levels if lv in found] or list(detector.cfg.levels)
    result = score_images(detector, images, list(levels), iou, limit)
    result["hmean"] = float(np.mean([v["hmean"] for v in result["levels"].values()]))
    return {"folder": str(folder), "detector": str(getattr(detector, "path", type(detector).__name__)),
            "unclip_ratio": detector.cfg.unclip_ratio, "box_threshold": detector.cfg.box_threshold, **result}
