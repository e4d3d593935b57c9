"""From DB probability maps to boxes: binarize, contours, minimum-area rectangles, box score, unclip, filter.

Torch-free (numpy, cv2, pyclipper): the ONNX runtime and the torch evaluation path call the same functions, so a
checkpoint and its exported model are scored alike.

>>> prob = np.zeros((64, 96), np.float32); prob[20:30, 10:60] = 0.9
>>> [d.quad.astype(int).tolist() for d in boxes_from_map(prob, unclip_ratio=1.5)]
[[[4, 14], [64, 14], [64, 34], [4, 34]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

from crnn_ocr.detect.config import DetectorConfig


@dataclass
class Detection:
    """One detected text box: `quad` (4, 2) float32 clockwise from the top-left, in original image pixels, and
    `score`, the mean text probability inside the kernel box."""

    quad: np.ndarray
    score: float

    def __repr__(self) -> str:
        return f"Detection(quad={np.round(self.quad, 1).tolist()}, score={self.score:.3f})"


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four corners ordered clockwise (image coordinates, y down) from the top-left.

    >>> order_quad(np.array([[9, 5], [0, 0], [9, 0], [0, 5]], np.float32)).tolist()
    [[0.0, 0.0], [9.0, 0.0], [9.0, 5.0], [0.0, 5.0]]
    """
    pts = np.asarray(points, np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise on screen (y points down), starting anywhere
    start = int(np.argmin(pts.sum(axis=1)))  # top-left: smallest x + y
    return np.roll(pts, -start, axis=0)


def unclip(box: np.ndarray, ratio: float) -> np.ndarray | None:
    """Grow a kernel box back by DB's offset area * ratio / perimeter (round joins); None if it degenerates."""
    poly = box.astype(np.float64)
    area = abs(cv2.contourArea(poly.astype(np.float32)))
    perimeter = cv2.arcLength(poly.astype(np.float32), True)
    if perimeter <= 0:
        return None
    pco = pyclipper.PyclipperOffset()
    scale = 16.0  # pyclipper works on integers: keep 1/16 pixel
    pco.AddPath(np.round(poly * scale).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = pco.Execute(area * ratio / perimeter * scale)
    if len(grown) != 1:
        return None
    return np.asarray(grown[0], np.float32) / scale


def box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean probability inside the (rotated) box, computed on its bounding window only."""
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(box.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(box.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [np.round((box - [x0, y0]) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def boxes_from_map(prob: np.ndarray, binarize_threshold: float = 0.3, box_threshold: float = 0.6,
                   unclip_ratio: float = 1.5, min_size: float = 3.0, max_boxes: int = 1000,
                   scale: tuple[float, float] = (1.0, 1.0), image_size: tuple[int, int] | None = None,
                   map_stride: float = 1.0) -> list[Detection]:
    """Boxes of one probability map (H', W') float32, highest score first.

    Args:
        prob: text-kernel probabilities.
        binarize_threshold: pixels above it form kernels.
        box_threshold: candidates whose mean probability is below it are dropped.
        unclip_ratio: kernel growth, as in training targets (1.5 for r = 0.4).
        min_size: short-side minimum, in network-input pixels, before and after unclipping.
        max_boxes: keep at most this many (the highest scores).
        scale: (sx, sy): original-image pixels per network-input pixel.
        image_size: (height, width) of the original image: quads are clipped to it.
        map_stride: network-input pixels per map pixel (1 when the map is at input resolution, 4 for raw maps).
    """
    bitmap = (prob > binarize_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) > 4 * max_boxes:  # pathological maps: look at the largest blobs only
        contours = sorted(contours, key=cv2.contourArea, reverse=True)[:4 * max_boxes]
    out: list[Detection] = []
    min_map = min_size / map_stride
    for contour in contours:
        if len(contour) < 2:
            continue
        rect = cv2.minAreaRect(contour.astype(np.float32))
        if min(rect[1]) < min_map:
            continue
        box = cv2.boxPoints(rect)
        score = box_score(prob, box)
        if score < box_threshold:
            continue
        grown = unclip(box, unclip_ratio)
        if grown is None:
            continue
        rect = cv2.minAreaRect(grown)
        if min(rect[1]) < min_map + 2 / map_stride:
            continue
        quad = order_quad(cv2.boxPoints(rect))
        # map pixel centres -> input pixel centres -> original pixel centres (align_corners=False convention)
        quad = (quad + 0.5) * map_stride
        quad = quad * np.array(scale, np.float32) - 0.5
        if image_size is not None:
            quad[:, 0] = np.clip(quad[:, 0], 0, image_size[1] - 1)
            quad[:, 1] = np.clip(quad[:, 1], 0, image_size[0] - 1)
        out.append(Detection(quad.astype(np.float32), score))
    out.sort(key=lambda d: -d.score)
    return out[:max_boxes]


def detections_from_maps(maps: np.ndarray, cfg: DetectorConfig, input_size: tuple[int, int],
                         image_size: tuple[int, int], levels: Sequence[str] | None = None,
                         box_threshold: float | None = None) -> dict[str, list[Detection]]:
    """Per level, the boxes of one image's maps (L, H', W') (from ONNX or torch), in original-image pixels.

    Args:
        maps: probabilities, one channel per `cfg.levels`, at any stride of the network input.
        cfg: the detector's config (thresholds, unclip ratio, min size, box cap).
        input_size: (height, width) the network saw.
        image_size: (height, width) of the original image.
        levels: the levels wanted (default all of `cfg.levels`).
        box_threshold: overrides `cfg.box_threshold` (e.g. a lower one to draw a precision-recall curve).
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3 or maps.shape[0] != cfg.num_levels:
        raise ValueError(f"expected maps (L={cfg.num_levels}, H, W), got {maps.shape}")
    stride = input_size[1] / maps.shape[2]
    scale = (image_size[1] / input_size[1], image_size[0] / input_size[0])
    out = {}
    for level in levels or cfg.levels:
        out[level] = boxes_from_map(
            maps[cfg.channel_of(level)], cfg.binarize_threshold,
            cfg.box_threshold if box_threshold is None else box_threshold, cfg.unclip_ratio, cfg.min_size,
            cfg.max_boxes, scale, image_size, stride)
    return out
