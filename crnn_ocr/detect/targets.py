"""DB training targets for one image and one text level: shrink (kernel) map and mask, threshold map and mask.

Differentiable Binarization (Liao et al., AAAI 2020) learns, per pixel, the probability of lying in a text
*kernel* (the text polygon shrunk by D = A (1 - r^2) / L, A area, L perimeter, r = 0.4) and a threshold that is
high on the text border and low elsewhere (the polygon dilated by the same D, value 1 - distance / D to the
nearest edge, rescaled to [0.3, 0.7]). Post-processing grows kernels back by a similar offset.

Torch-free (numpy, cv2, pyclipper): the dataset builds targets in loader workers.

>>> quad = np.array([[10, 10], [50, 10], [50, 30], [10, 30]], np.float32)
>>> t = make_targets((40, 64), [TextRegion(quad)])
>>> sorted(t), t["shrink"].shape, int(t["shrink"][20, 30]), int(t["shrink"][11, 30])
(['shrink', 'shrink_mask', 'thresh', 'thresh_mask'], (40, 64), 1, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

THRESH_MIN, THRESH_MAX = 0.3, 0.7  # DB's threshold-map range: low inside and outside text, high on its border
_SHIFT = 4  # cv2 sub-pixel bits: polygons are drawn at 1/16 pixel precision (small text at 1/4 scale)
_CLIPPER_SCALE = 64.0  # pyclipper works on integers


@dataclass
class TextRegion:
    """A text polygon (N, 2) in image pixels and whether it is a don't-care region."""

    polygon: np.ndarray
    ignore: bool = False


def polygon_area(poly: np.ndarray) -> float:
    """Unsigned area (shoelace).

    >>> polygon_area(np.array([[0, 0], [4, 0], [4, 3], [0, 3]], np.float32))
    12.0
    """
    x, y = poly[:, 0].astype(np.float64), poly[:, 1].astype(np.float64)
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def polygon_perimeter(poly: np.ndarray) -> float:
    return float(np.linalg.norm(poly.astype(np.float64) - np.roll(poly, -1, axis=0), axis=1).sum())


def shrink_offset(poly: np.ndarray, ratio: float) -> float:
    """DB's offset D = A (1 - r^2) / L (0 for a degenerate polygon)."""
    perimeter = polygon_perimeter(poly)
    return polygon_area(poly) * (1 - ratio * ratio) / perimeter if perimeter > 0 else 0.0


def offset_polygon(poly: np.ndarray, distance: float) -> list[np.ndarray]:
    """The polygon grown (distance > 0) or shrunk (< 0) with round joins; [] when shrinking makes it vanish."""
    pco = pyclipper.PyclipperOffset()
    pco.AddPath(np.round(poly * _CLIPPER_SCALE).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(p, np.float64) / _CLIPPER_SCALE for p in pco.Execute(distance * _CLIPPER_SCALE) if len(p) >= 3]


def fill(canvas: np.ndarray, polygons: Sequence[np.ndarray], value: float) -> None:
    """cv2.fillPoly at sub-pixel precision (vertices rounded to 1/16 pixel; pixel centres at integers)."""
    if polygons:
        pts = [np.round(np.asarray(p, np.float64) * (1 << _SHIFT)).astype(np.int32) for p in polygons]
        cv2.fillPoly(canvas, pts, value, lineType=cv2.LINE_8, shift=_SHIFT)


def min_side(poly: np.ndarray) -> float:
    """Short side of the polygon's minimum-area rectangle."""
    (_, _), (w, h), _ = cv2.minAreaRect(poly.astype(np.float32))
    return float(min(w, h))


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point (xs, ys) to the segment a-b."""
    ab = b - a
    length2 = float(ab @ ab)
    if length2 < 1e-12:
        return np.hypot(xs - a[0], ys - a[1])
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / length2, 0.0, 1.0)
    return np.hypot(xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1]))


def _draw_border(thresh: np.ndarray, poly: np.ndarray, distance: float) -> None:
    """Max into `thresh` the DB border value 1 - d / D (d: distance to the polygon's nearest edge) on the
    pixels within D of it."""
    h, w = thresh.shape
    lo = np.floor(poly.min(axis=0) - distance).astype(int)
    hi = np.ceil(poly.max(axis=0) + distance).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w - 1), min(hi[1], h - 1)
    if x1 < x0 or y1 < y0:
        return
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    d = np.full(xs.shape, np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        d = np.minimum(d, _segment_distance(xs, ys, a, b))
    value = 1.0 - np.clip(d / distance, 0.0, 1.0)
    region = thresh[y0:y1 + 1, x0:x1 + 1]
    np.maximum(region, value.astype(np.float32), out=region)


def make_targets(size: tuple[int, int], regions: Sequence[TextRegion], shrink_ratio: float = 0.4, stride: int = 1,
                 min_text_size: float = 4.0, complete: bool = True) -> dict[str, np.ndarray]:
    """DB targets of one level of one image, at 1/`stride` resolution.

    Args:
        size: (height, width) of the image in pixels; maps are (ceil(h / stride), ceil(w / stride)).
        regions: text polygons in image pixels (pixel centres at integer coordinates).
        shrink_ratio: r of D = A (1 - r^2) / L.
        stride: output resolution divisor (1: image resolution; map pixel j's centre is image pixel
            (j + 0.5) * stride - 0.5, as bilinear upsampling with align_corners=False assumes).
        min_text_size: regions whose short side (image pixels) is below this are don't-care.
        complete: False when the image has unlabelled text: only the surroundings of labelled regions (their
            polygons dilated by D) are supervised; elsewhere the masks are 0.

    Returns:
        float32 maps: `shrink` (1 in kernels), `shrink_mask` (1 where the probability loss counts), `thresh`
        (border values in [0.3, 0.7]) and `thresh_mask` (1 where the threshold loss counts).
    """
    h, w = -(-size[0] // stride), -(-size[1] // stride)
    shrink = np.zeros((h, w), np.float32)
    shrink_mask = np.full((h, w), 1.0 if complete else 0.0, np.float32)
    border = np.zeros((h, w), np.float32)
    thresh_mask = np.zeros((h, w), np.float32)
    ignored: list[np.ndarray] = []
    for region in regions:
        poly = (np.asarray(region.polygon, np.float64).reshape(-1, 2) + 0.5) / stride - 0.5  # image -> map pixels
        if len(poly) < 3 or polygon_area(poly) < 1e-6:
            continue
        if region.ignore or min_side(poly) * stride < min_text_size:
            ignored.append(poly)
            continue
        distance = shrink_offset(poly, shrink_ratio)
        kernels = offset_polygon(poly, -distance)
        grown = offset_polygon(poly, distance)
        if not complete:
            fill(shrink_mask, grown, 1.0)
        if not kernels:  # too thin to keep a kernel: its pixels would be wrong either way
            ignored.append(poly)
            continue
        fill(shrink, kernels, 1.0)
        fill(thresh_mask, grown, 1.0)
        _draw_border(border, poly, distance)
    fill(shrink_mask, ignored, 0.0)
    thresh = border * (THRESH_MAX - THRESH_MIN) + THRESH_MIN
    return {"shrink": shrink, "shrink_mask": shrink_mask, "thresh": thresh, "thresh_mask": thresh_mask}


def empty_targets(size: tuple[int, int], stride: int = 1) -> dict[str, np.ndarray]:
    """Targets of a level the image does not supervise: every mask 0."""
    h, w = -(-size[0] // stride), -(-size[1] // stride)
    zeros = np.zeros((h, w), np.float32)
    return {"shrink": zeros, "shrink_mask": zeros.copy(), "thresh": np.full((h, w), THRESH_MIN, np.float32),
            "thresh_mask": zeros.copy()}
