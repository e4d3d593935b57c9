"""Finding the text lines of a whole image (page, receipt, screenshot) with OpenCV and numpy only.

A CRNN reads one line, so a page is first cut into lines. The steps:

1. Work on a copy scaled so its long side is at most `max_side` pixels (big scans are slow otherwise).
2. Binarise both polarities with Sauvola thresholds. A local-background map (a wide box filter compared with
   the page's Otsu level) says, per pixel, whether text there is dark on light or light on dark, so white-on-
   black pages and dark banners inside light pages both work.
3. Connected components are sorted into characters ("seeds"), small marks (dots, commas, hyphens: they join
   a line but never start one), rules and big non-text shapes (borders, pictures), by their size relative to
   the median character height.
4. The skew is the angle whose projection profile of character centres is sharpest (within +-`max_angle`
   degrees); the image is rotated upright and analysed again.
5. Characters are chained left to right into line segments; a horizontal gap wider than `gap` times the text
   height ends a segment, so table columns and side-by-side text columns stay apart.
6. Reading order: segments sharing a row are read left to right, rows top to bottom, except where two or
   more text columns (stacks of wide lines) stand side by side: those are read column by column.

No torch here: the torch-free ONNX runtime uses this module too.

>>> import numpy as np, cv2
>>> page = np.full((120, 400), 255, np.uint8)
>>> _ = cv2.putText(page, "HELLO WORLD", (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
>>> _ = cv2.putText(page, "SECOND LINE", (10, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
>>> [(line.y0 < 50 < line.y1, line.row) for line in find_lines(page)]
[(True, 0), (False, 1)]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from crnn_ocr.errors import TooComplexError
from crnn_ocr.image.preprocess import to_gray

# Sauvola's k. The textbook 0.2 breaks faint thermal and dot-matrix receipt print into specks; 0.05-0.1 was best on
# pseudo-pages stacked from sroie_train crops, and the contrast floor keeps flat backgrounds clean.
SAUVOLA_K = 0.1

# More connected components than this at analysis scale is noise, not text: the most on 180 training pages and
# photos (FUNSD, SROIE, MSRA-TD500) was 32,896, the 99th percentile 5,300; a 2000 x 2000 page of random specks
# has 256,000 and would take minutes to group.
MAX_COMPONENTS = 60_000

# A small image is a stack of lines (`is_stack_of_lines`) when two or more rows span this share of its width with
# text at least this many pixels high, the largest at most this many times the smallest, no row this share of the
# image height or more. Chosen on 2-3-line snippets cut from sroie_receipts_train and the word crops of the IIIT5K,
# IC15 and SVT training splits, whose clutter rows are narrow, tiny or under one row that fills the crop.
STACK_MIN_WIDTH = 0.4
STACK_MIN_TEXT_PX = 8
STACK_SIZE_RATIO = 2.0
STACK_MAX_ROW_HEIGHT = 0.6

# Component categories.
_NOISE, _SEED, _SMALL, _OTHER = 0, 1, 2, 3


@runtime_checkable
class TextFilter(Protocol):
    """A verifier that drops false line candidates (logos, stamps, barcodes, noise).

    Called with the upright, dark-on-light crop of every candidate line (uint8, (H, W) or (H, W, 3)); returns
    one keep flag per crop. A learned text/non-text classifier plugs in here.
    """

    def __call__(self, crops: Sequence[np.ndarray]) -> Sequence[bool]: ...


@dataclass
class LineBox:
    """One text line (a segment of a row) found in an image, in that image's pixel coordinates.

    Attributes:
        x0, y0, x1, y1: axis-aligned bounds, x1/y1 exclusive.
        quad: the line's rectangle as 4 corners (top-left, top-right, bottom-right, bottom-left); it is
            rotated by `angle` when the page is skewed.
        angle: page skew in degrees, counter-clockwise (text rising to the right is positive).
        height: text height in pixels, measured perpendicular to the line.
        inverted: light text on a dark background.
        block: reading-order block (a text column, or a run of rows between columns).
        row: reading-order row; segments of one table row share it.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    quad: tuple[tuple[float, float], ...]
    angle: float = 0.0
    height: float = 0.0
    inverted: bool = False
    block: int = 0
    row: int = 0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def width(self) -> float:
        """Length of the line along its own direction."""
        (ax, ay), (bx, by) = self.quad[0], self.quad[1]
        return math.hypot(bx - ax, by - ay)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad],
                "angle": round(self.angle, 2), "height": round(self.height, 1), "inverted": self.inverted,
                "block": self.block, "row": self.row}


def sauvola(gray: np.ndarray, window: int, k: float = SAUVOLA_K, min_contrast: float = 12.0) -> np.ndarray:
    """Dark-foreground mask: Sauvola's local threshold, and at least `min_contrast` below the local mean.

    The contrast floor keeps flat backgrounds and JPEG noise out, where Sauvola alone would keep specks.
    """
    window = max(3, int(window) | 1)
    f = gray.astype(np.float32)
    mean = cv2.boxFilter(f, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    mean_sq = cv2.boxFilter(f * f, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    threshold = mean * (1.0 + k * (std / 128.0 - 1.0))
    return (f < threshold) & (f < mean - min_contrast)


def _otsu(gray: np.ndarray) -> float:
    """The level between dark and light: midway between the means of Otsu's two classes.

    (Otsu's own threshold can sit at either end of an empty range: 0 for an image of only 0 and 255.)
    """
    value, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    t = int(value)
    low, high = hist[: t + 1], hist[t + 1:]
    if low.sum() == 0 or high.sum() == 0:
        return float(value)
    return float(((low * levels[: t + 1]).sum() / low.sum() + (high * levels[t + 1:]).sum() / high.sum()) / 2)


@dataclass
class _Comps:
    """Connected components of both polarities at working scale (one row per component)."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    area: np.ndarray
    light: np.ndarray  # light-on-dark polarity
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    text_height: float = 0.0

    @property
    def w(self) -> np.ndarray:
        return self.x1 - self.x0

    @property
    def h(self) -> np.ndarray:
        return self.y1 - self.y0

    def __len__(self) -> int:
        return len(self.x0)


def _rough_text_height(gray: np.ndarray) -> float:
    """Median character height from a global Otsu binarisation (sets the window sizes of the real pass)."""
    t = _otsu(gray)
    dark = gray < t
    if dark.mean() > 0.5:  # mostly dark: light text on a dark page
        dark = ~dark
    n, _, stats, _ = cv2.connectedComponentsWithStats(dark.astype(np.uint8), connectivity=8)
    h, w, area = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_AREA]
    ok = (h >= 5) & (h <= gray.shape[0] / 4) & (area >= 8) & (w <= 6 * h)
    return float(np.median(h[ok])) if ok.sum() >= 3 else 20.0


def _components(gray: np.ndarray, text_height: float, min_contrast: float) -> _Comps:
    """Binarise both polarities and return their classified connected components."""
    window = int(np.clip(3 * text_height, 15, 201))
    # Local background: a wide mean is light where text is dark on light, dark under light text.
    wide = int(np.clip(8 * text_height, 31, 801)) | 1
    background = cv2.boxFilter(gray.astype(np.float32), -1, (wide, wide), borderType=cv2.BORDER_REFLECT)
    light_background = background >= _otsu(gray)
    parts = []
    for light, mask in (
        (False, sauvola(gray, window, SAUVOLA_K, min_contrast=min_contrast) & light_background),
        (True, sauvola(255 - gray, window, SAUVOLA_K, min_contrast=min_contrast) & ~light_background),
    ):
        if not mask.any():
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        s = stats[1:].astype(np.int64)
        parts.append((s, np.full(len(s), light)))
    if not parts:
        empty = np.zeros(0, np.int64)
        return _Comps(empty, empty, empty, empty, empty, np.zeros(0, bool), np.zeros(0, np.int8))
    stats = np.concatenate([p[0] for p in parts])
    light = np.concatenate([p[1] for p in parts])
    x0, y0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    comps = _Comps(x0, y0, x0 + stats[:, cv2.CC_STAT_WIDTH], y0 + stats[:, cv2.CC_STAT_HEIGHT],
                   stats[:, cv2.CC_STAT_AREA], light)
    _classify(comps, gray.shape)
    return comps


def _classify(c: _Comps, shape: tuple[int, ...]) -> None:
    """Sort components into seeds (characters), small marks, noise and other (rules, borders, pictures)."""
    h, w, area = c.h, c.w, c.area
    plausible = (h >= 5) & (h <= shape[0] / 3) & (area >= 8) & (w <= 8 * h)
    hm = float(np.median(h[plausible])) if plausible.any() else 12.0
    # A second estimate from the characters of typical size, so specks and punctuation do not pull it down.
    typical = plausible & (h >= 0.5 * hm) & (h <= 3 * hm)
    if typical.sum() >= 3:
        hm = float(np.median(h[typical]))
    kind = np.full(len(h), _SEED, np.int8)
    fill = area / np.maximum(w * h, 1)
    kind[(h < 0.45 * hm) | (h < 4)] = _SMALL
    rule = ((h <= 0.5 * hm) & (w >= 3 * hm)) | ((w <= 0.5 * hm) & (h >= 3 * hm))
    big = (h > 6 * hm) | ((w > 20 * hm) & (h > 1.5 * hm)) | (w > 0.9 * shape[1])
    blob = (w > 4 * hm) & (h > 2 * hm) & (fill > 0.7)  # solid boxes and pictures
    kind[rule | big | blob] = _OTHER
    noise = (area < max(2.0, 0.02 * hm * hm)) | ((h <= max(1.0, 0.1 * hm)) & (w <= max(1.0, 0.1 * hm)))
    kind[noise] = _NOISE
    c.kind, c.text_height = kind, hm


def estimate_skew(cx: np.ndarray, cy: np.ndarray, weights: np.ndarray, text_height: float,
                  max_angle: float = 5.0) -> float:
    """Angle (degrees, counter-clockwise) that makes character points (cx, cy) fall into the sharpest rows.

    For each candidate angle the points are projected across the lines into a 1-pixel histogram, smoothed
    with a Gaussian a few pixels wide (so bin edges do not matter); the score, the sum of squares, is largest
    when lines are level. Coarse 0.25 degree steps, then 0.05. Bottoms of characters make good points.

    >>> import numpy as np
    >>> x = np.tile(np.arange(0, 500, 10.0), 4); y = np.repeat([50.0, 90, 130, 170], 50) - x * np.tan(np.radians(2))
    >>> estimate_skew(x, y, np.ones_like(x), 20.0)
    2.0
    """
    if len(cx) < 8 or max_angle <= 0:
        return 0.0
    sigma = max(1.0, text_height / 8)
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)

    def best(angles: np.ndarray) -> float:
        t = np.tan(np.radians(angles))[:, None]
        projected = cy[None, :] + cx[None, :] * t  # (A, N): constant along a line rising at that angle
        scores = []
        for row in projected:
            f = row - row.min()
            i = f.astype(np.int64)
            frac = f - i  # split each point between its two nearest bins: the score varies smoothly
            counts = np.bincount(i, weights * (1 - frac), len(f) and i.max() + 2) + np.bincount(i + 1, weights * frac)
            smooth = np.convolve(counts, kernel)
            scores.append(float(np.dot(smooth, smooth)))
        scores = np.asarray(scores)
        # Prefer the smallest angle among (nearly) equal scores: a level page should stay level.
        top = np.flatnonzero(scores >= scores.max() * (1 - 1e-6))
        return float(angles[top[np.argmin(np.abs(angles[top]))]])

    coarse = best(np.arange(-max_angle, max_angle + 1e-9, 0.25))
    fine = best(np.arange(coarse - 0.25, coarse + 0.25 + 1e-9, 0.05))
    return round(float(np.clip(fine, -max_angle, max_angle)), 2)


class _Segment:
    """A line segment being built: its bounds, its seeds, a running median height, the band of recent seeds."""

    __slots__ = ("x0", "y0", "x1", "y1", "seed_x1", "light", "seeds", "_heights", "_recent", "h", "b0", "b1")

    def __init__(self, i: int, x0: float, y0: float, x1: float, y1: float, light: bool):
        self.x0, self.y0, self.x1, self.y1, self.seed_x1, self.light = x0, y0, x1, y1, x1, light
        self.seeds = [i]
        self._heights = [y1 - y0]
        self._recent = [(y0, y1)]
        self.h, self.b0, self.b1 = y1 - y0, y0, y1

    def add_seed(self, i: int, x0: float, y0: float, x1: float, y1: float) -> None:
        self.seeds.append(i)
        self.extend(x0, y0, x1, y1)
        self.seed_x1 = max(self.seed_x1, x1)
        bisect.insort(self._heights, y1 - y0)
        n = len(self._heights)
        self.h = self._heights[n // 2] if n % 2 else (self._heights[n // 2 - 1] + self._heights[n // 2]) / 2
        self._recent = (self._recent + [(y0, y1)])[-5:]
        tops = sorted(b[0] for b in self._recent)
        bottoms = sorted(b[1] for b in self._recent)
        self.b0, self.b1 = tops[len(tops) // 2], bottoms[len(bottoms) // 2]

    def extend(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x0, self.y0, self.x1, self.y1 = min(self.x0, x0), min(self.y0, y0), max(self.x1, x1), max(self.y1, y1)

    def takes_small(self, x0: float, y0: float, x1: float, y1: float, reach: float) -> bool:
        """Whether a small mark belongs to this segment: at most `reach` heights beside it, and vertically within
        its band (dots and accents over its characters may sit higher, commas lower). A mark out beside the
        characters must sit inside the band itself, or a dashed rule just above a row would bridge its gaps."""
        sh = self.h
        cy = (y0 + y1) / 2
        if y1 - y0 > sh or x1 - x0 > 3 * sh or x1 < self.x0 - reach * sh or x0 > self.x1 + reach * sh:
            return False
        if x0 >= self.seed_x1 or x1 <= self.x0:
            return self.b0 <= cy <= self.b1 + 0.35 * sh
        return self.b0 - 0.6 * sh <= cy <= self.b1 + 0.35 * sh


def _group_segments(c: _Comps, gap: float) -> list[_Segment]:
    """Chain seeds left to right into line segments; small marks join the segment they sit in, never start one.

    Marks are taken during the sweep, so a period or colon before a space bridges its part of the gap.
    """
    items = np.flatnonzero((c.kind == _SEED) | (c.kind == _SMALL))
    items = items[np.lexsort((c.y0[items], c.x0[items]))]
    seeds = items[c.kind[items] == _SEED]
    max_h = float(c.h[seeds].max()) if len(seeds) else 0.0
    open_: list[_Segment] = []
    done: list[_Segment] = []
    left_over: list[int] = []
    X0, Y0, X1, Y1 = (c.x0.astype(float), c.y0.astype(float), c.x1.astype(float), c.y1.astype(float))
    for i in items:
        x0, y0, x1, y1, light = X0[i], Y0[i], X1[i], Y1[i], bool(c.light[i])
        h = y1 - y0
        if c.kind[i] == _SMALL:
            # A mark within reach of a segment joins it, and then bridges its part of the next gap (": ", " - ").
            cy = (y0 + y1) / 2
            host = None
            for s in open_:
                if s.light == light and s.takes_small(x0, y0, x1, y1, gap):
                    if host is None or abs(cy - (s.b0 + s.b1) / 2) < abs(cy - (host.b0 + host.b1) / 2):
                        host = s
            if host is None:
                left_over.append(int(i))
            else:
                host.extend(x0, y0, x1, y1)
            continue
        # Close segments that no later seed can reach (items come in order of x0).
        if open_:
            still = []
            for s in open_:
                (done if x0 - s.x1 > gap * max(s.h, max_h) else still).append(s)
            open_ = still
        best, best_score = None, 0.0
        for s in open_:
            if s.light != light:
                continue
            sh = s.h
            distance = x0 - s.x1
            if distance > gap * sh or not (sh / 3 <= h <= 3 * sh):
                continue
            overlap = min(y1, s.b1) - max(y0, s.b0)
            ratio = overlap / max(1.0, min(h, s.b1 - s.b0))
            score = ratio - 0.01 * max(0.0, distance) / max(sh, 1.0)
            if ratio >= 0.5 and score > best_score:
                best, best_score = s, score
        if best is None:
            # A low mark that fits no band as a character (a comma, a quote) joins a segment as a mark instead.
            cy = (y0 + y1) / 2
            hosts = [s for s in open_ if s.light == light and h <= 0.8 * s.h and s.takes_small(x0, y0, x1, y1, gap)]
            if hosts:
                min(hosts, key=lambda s: abs(cy - (s.b0 + s.b1) / 2)).extend(x0, y0, x1, y1)
            else:
                open_.append(_Segment(int(i), x0, y0, x1, y1, light))
        else:
            best.add_seed(int(i), x0, y0, x1, y1)
    segments = done + open_
    # Marks that came before their segment's first seed (an opening quote) or were missed: one more pass.
    for i in left_over:
        x0, y0, x1, y1 = X0[i], Y0[i], X1[i], Y1[i]
        cy = (y0 + y1) / 2
        hosts = [s for s in segments if s.light == bool(c.light[i]) and s.takes_small(x0, y0, x1, y1, 0.5)]
        if hosts:
            min(hosts, key=lambda s: abs(cy - (s.b0 + s.b1) / 2)).extend(x0, y0, x1, y1)
    return segments


def _keep_segment(c: _Comps, s: _Segment, min_height: float) -> bool:
    """Drop segments that are not text: too low, or barcode-like runs of thin tall bars."""
    if s.y1 - s.y0 < min_height:
        return False
    seeds = np.asarray(s.seeds)
    aspect = c.w[seeds] / np.maximum(c.h[seeds], 1)
    if len(seeds) >= 6 and np.median(aspect) < 0.2 and s.h > 1.5 * c.text_height:
        return False
    return True


def _rows(boxes: np.ndarray, members: list[int]) -> list[list[int]]:
    """Group segments whose vertical extents overlap by at least half the lower one into rows."""
    rows: list[list[int]] = []
    bands: list[tuple[float, float]] = []
    for i in sorted(members, key=lambda k: (boxes[k, 1] + boxes[k, 3]) / 2):
        y0, y1 = boxes[i, 1], boxes[i, 3]
        best, best_ratio = -1, 0.5
        for r, (b0, b1) in enumerate(bands):
            ratio = (min(y1, b1) - max(y0, b0)) / max(1.0, min(y1 - y0, b1 - b0))
            if ratio >= best_ratio:
                best, best_ratio = r, ratio
        if best < 0:
            rows.append([i])
            bands.append((y0, y1))
        else:
            rows[best].append(i)
            ys = boxes[rows[best]]
            bands[best] = (float(np.median(ys[:, 1])), float(np.median(ys[:, 3])))
    for r in rows:
        r.sort(key=lambda k: boxes[k, 0])
    rows.sort(key=lambda r: float(np.median(boxes[r, 1])))
    return rows


def _text_columns(boxes: np.ndarray, heights: np.ndarray, min_width: float) -> list[list[list[int]]]:
    """Groups of side-by-side text columns; each group is a list of columns, each a top-to-bottom list.

    A column block is a chain of segments stacked closely with overlapping x-ranges, whose lines are wide
    (prose, not table cells). Blocks count only where another block stands beside them, so a receipt's
    item column next to short price cells stays row by row.
    """
    n = len(boxes)
    if n < 4:
        return []
    # Chain each segment to its nearest close segment below.
    below = np.full(n, -1)
    above = np.full(n, -1)
    order = np.argsort(boxes[:, 1])
    for a in order:
        ax0, ay0, ax1, ay1 = boxes[a]
        best, best_gap = -1, np.inf
        for b in range(n):
            if b == a or above[b] >= 0:
                continue
            bx0, by0, bx1, by1 = boxes[b]
            vgap = by0 - ay1
            if by0 <= (ay0 + ay1) / 2 or vgap > 1.2 * max(ay1 - ay0, by1 - by0):
                continue
            if not (heights[b] <= 1.5 * heights[a] and heights[a] <= 1.5 * heights[b]):
                continue
            overlap = min(ax1, bx1) - max(ax0, bx0)
            if overlap < 0.5 * min(ax1 - ax0, bx1 - bx0):
                continue
            if vgap < best_gap:
                best, best_gap = b, vgap
        if best >= 0:
            below[a], above[best] = best, a
    blocks = []
    for start in range(n):
        if above[start] >= 0:
            continue
        chain = [start]
        while below[chain[-1]] >= 0:
            chain.append(int(below[chain[-1]]))
        widths = boxes[chain, 2] - boxes[chain, 0]
        if len(chain) >= 2 and np.median(widths) >= min_width * np.median(heights[chain]):
            blocks.append(chain)
    if len(blocks) < 2:
        return []
    ext = np.array([[boxes[b, 0].min(), boxes[b, 1].min(), boxes[b, 2].max(), boxes[b, 3].max()] for b in blocks])
    parent = list(range(len(blocks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(blocks)):
        for j in range(i + 1, len(blocks)):
            apart = ext[i, 2] <= ext[j, 0] or ext[j, 2] <= ext[i, 0]
            v_overlap = min(ext[i, 3], ext[j, 3]) - max(ext[i, 1], ext[j, 1])
            if apart and v_overlap >= 0.5 * min(ext[i, 3] - ext[i, 1], ext[j, 3] - ext[j, 1]):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(blocks)):
        groups.setdefault(root(i), []).append(i)
    result = []
    for members in groups.values():
        if len(members) < 2:
            continue
        # Columns: blocks whose x-ranges overlap, left to right; blocks in a column top to bottom.
        members.sort(key=lambda i: ext[i, 0])
        columns: list[list[int]] = []
        col_ext: list[list[float]] = []
        for i in members:
            for k, (c0, c1) in enumerate(col_ext):
                if min(c1, ext[i, 2]) - max(c0, ext[i, 0]) > 0:
                    columns[k].append(i)
                    col_ext[k] = [min(c0, ext[i, 0]), max(c1, ext[i, 2])]
                    break
            else:
                columns.append([i])
                col_ext.append([ext[i, 0], ext[i, 2]])
        result.append([[seg for b in sorted(col, key=lambda i: ext[i, 1]) for seg in blocks[b]] for col in columns])
    return result


def reading_order(boxes: np.ndarray, heights: np.ndarray, column_min_width: float = 8.0
                  ) -> tuple[list[int], list[int], list[int]]:
    """Order upright segment boxes (N, 4) for reading; returns (order, block of each, row of each).

    Rows (segments side by side at one height) are read left to right, top to bottom, except inside groups of
    side-by-side text columns, read column after column. Other segments lying inside one column of such a
    group (a heading, a short last line) are read with that column.
    """
    n = len(boxes)
    if n == 0:
        return [], [], []
    groups = _text_columns(boxes, heights, column_min_width)
    in_group = np.zeros(n, bool)
    for g in groups:
        for col in g:
            in_group[col] = True
    # Adopt loose segments that sit within one column of a group's vertical span.
    for g in groups:
        y_top = min(boxes[col, 1].min() for col in g)
        y_bottom = max(boxes[col, 3].max() for col in g)
        col_x = [(boxes[col, 0].min(), boxes[col, 2].max()) for col in g]
        for i in np.flatnonzero(~in_group):
            cy = (boxes[i, 1] + boxes[i, 3]) / 2
            if not (y_top <= cy <= y_bottom):
                continue
            hits = [k for k, (c0, c1) in enumerate(col_x) if min(c1, boxes[i, 2]) - max(c0, boxes[i, 0]) > 0]
            if len(hits) == 1:
                g[hits[0]].append(int(i))
                in_group[i] = True
        for col in g:
            col.sort(key=lambda k: (boxes[k, 1] + boxes[k, 3]) / 2)
    units: list[tuple[float, str, object]] = []
    for g in groups:
        units.append((float(min(boxes[col, 1].min() for col in g)), "group", g))
    for r in _rows(boxes, [int(i) for i in np.flatnonzero(~in_group)]):
        units.append((float(np.median(boxes[r, 1])), "row", r))
    units.sort(key=lambda u: u[0])
    order: list[int] = []
    block = [0] * n
    row = [0] * n
    b, r = -1, 0
    previous = None
    for _, kind, unit in units:
        if kind == "group":
            for col in unit:  # type: ignore[union-attr]
                b += 1
                for i in col:
                    order.append(i)
                    block[i], row[i] = b, r
                    r += 1
        else:
            if previous != "row":
                b += 1
            for i in unit:  # type: ignore[union-attr]
                order.append(i)
                block[i], row[i] = b, r
            r += 1
        previous = kind
    return order, block, row


def _rotation(width: int, height: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine matrix turning an image by -angle degrees (deskewing text at `angle`) on an enlarged canvas."""
    m = cv2.getRotationMatrix2D((width / 2, height / 2), -angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w, new_h = int(math.ceil(height * sin + width * cos)), int(math.ceil(height * cos + width * sin))
    m[0, 2] += new_w / 2 - width / 2
    m[1, 2] += new_h / 2 - height / 2
    return m, (new_w, new_h)


def find_lines(
    image: np.ndarray,
    *,
    max_side: int = 2400,
    gap: float = 1.5,
    max_angle: float = 5.0,
    min_contrast: float = 12.0,
    min_height: float = 5.0,
    text_filter: TextFilter | None = None,
) -> list[LineBox]:
    """Find the text lines of a page, receipt or screenshot, in reading order.

    Args:
        image: uint8 (H, W) gray or (H, W, 3) RGB.
        max_side: the analysis runs on a copy scaled down to this long side (boxes are in full resolution).
        gap: a horizontal gap wider than this many text heights splits a line into separate segments.
        max_angle: deskew search range in degrees (0: no deskew).
        min_contrast: gray levels text must differ from its surroundings by.
        min_height: lines lower than this (pixels at analysis scale) are dropped.
        text_filter: optional verifier given the line crops; lines it rejects are dropped.

    Returns:
        LineBox list in reading order; empty for blank or empty images.
    """
    gray = to_gray(image)
    if gray.size == 0 or min(gray.shape) < 4:
        return []
    H, W = gray.shape
    scale = min(1.0, max_side / max(H, W))
    work = cv2.resize(gray, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    if int(work.max()) - int(work.min()) < min_contrast:
        return []
    text_height = _rough_text_height(work)
    comps = _components(work, text_height, min_contrast)
    if len(comps.kind) > MAX_COMPONENTS:
        raise TooComplexError(f"{len(comps.kind)} separate ink specks (limit {MAX_COMPONENTS}): too noisy to find "
                              "lines of text in")
    seeds = np.flatnonzero(comps.kind == _SEED)
    if not len(seeds):
        return []
    angle = 0.0
    if max_angle > 0:
        cx = (comps.x0[seeds] + comps.x1[seeds]) / 2.0
        cy = comps.y1[seeds].astype(np.float64)
        angle = estimate_skew(cx, cy, comps.w[seeds].astype(np.float64), comps.text_height, max_angle)
        if abs(angle) < 0.1:
            angle = 0.0
    if angle:
        matrix, size = _rotation(work.shape[1], work.shape[0], angle)
        fill = int(np.median(work))
        upright = cv2.warpAffine(work, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=fill)
        comps = _components(upright, comps.text_height, min_contrast)
        back = cv2.invertAffineTransform(matrix)
    else:
        back = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    segments = [s for s in _group_segments(comps, gap) if _keep_segment(comps, s, min_height)]
    if not segments:
        return []
    boxes = np.array([[s.x0, s.y0, s.x1, s.y1] for s in segments], dtype=np.float64)
    heights = np.array([s.h for s in segments])
    order, block, row = reading_order(boxes, heights)
    lines = []
    for i in order:
        x0, y0, x1, y1 = boxes[i]
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64)
        quad = (corners @ back.T) / scale  # (4, 3) @ (3, 2) -> (4, 2) in the input's pixels
        bx0, by0 = np.floor(quad.min(axis=0)).astype(int)
        bx1, by1 = np.ceil(quad.max(axis=0)).astype(int)
        lines.append(LineBox(
            max(0, int(bx0)), max(0, int(by0)), min(W, int(bx1)), min(H, int(by1)),
            tuple((float(x), float(y)) for x, y in quad), angle, float((y1 - y0) / scale),
            bool(segments[i].light), int(block[i]), int(row[i]),
        ))
    if text_filter is not None:
        lines = apply_filter(gray, lines, text_filter)
    return lines


def crop_line(image: np.ndarray, line: LineBox, pad: float = 0.2, normalize_polarity: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """The upright crop of one line, with `pad` text heights of margin, and the crop-to-image affine map.

    Light-on-dark lines are inverted (when `normalize_polarity`) so the recogniser always sees dark text.
    Returns (crop, to_image) where to_image is a (2, 3) matrix mapping crop pixels to image pixels.
    """
    quad = np.asarray(line.quad, dtype=np.float64)
    tl, tr, bl = quad[0], quad[1], quad[3]
    ux = (tr - tl) / max(np.linalg.norm(tr - tl), 1e-9)  # unit vector along the line
    uy = (bl - tl) / max(np.linalg.norm(bl - tl), 1e-9)  # unit vector down across it
    h_line = float(np.linalg.norm(bl - tl))
    margin = pad * max(h_line, 1.0)
    origin = tl - margin * ux - margin * uy
    out_w = max(1, int(round(np.linalg.norm(tr - tl) + 2 * margin)))
    out_h = max(1, int(round(h_line + 2 * margin)))
    to_image = np.column_stack([ux, uy, origin])  # crop (u, v) -> image origin + u*ux + v*uy
    if abs(line.angle) < 1e-6:
        x0, y0 = int(round(origin[0])), int(round(origin[1]))
        xa, ya = max(0, x0), max(0, y0)
        xb, yb = min(image.shape[1], x0 + out_w), min(image.shape[0], y0 + out_h)
        crop = np.ascontiguousarray(image[ya:yb, xa:xb])
        to_image = np.array([[1.0, 0, xa], [0, 1.0, ya]])
        if crop.size == 0:
            crop = np.full((1, 1) + image.shape[2:], 255, np.uint8)
    else:
        to_crop = cv2.invertAffineTransform(to_image)
        border = np.median(image.reshape(-1, *image.shape[2:])[:: max(1, image.size // 4096)], axis=0)
        border_value = tuple(float(v) for v in np.atleast_1d(border))
        crop = cv2.warpAffine(image, to_crop, (out_w, out_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    if normalize_polarity and line.inverted:
        crop = 255 - crop
    return crop, to_image


def apply_filter(image: np.ndarray, lines: list[LineBox], text_filter: TextFilter) -> list[LineBox]:
    """Keep the lines whose crops `text_filter` accepts (reading order is kept)."""
    if not lines:
        return lines
    crops = [crop_line(image, line)[0] for line in lines]
    keep = list(text_filter(crops))
    if len(keep) != len(lines):
        raise ValueError(f"text filter returned {len(keep)} flags for {len(lines)} lines")
    return [line for line, k in zip(lines, keep) if k]


def _lines_by_row(lines: list[LineBox]) -> list[list[LineBox]]:
    rows: dict[int, list[LineBox]] = {}
    for line in lines:
        rows.setdefault(line.row, []).append(line)
    return list(rows.values())


def _extent(row: list[LineBox]) -> tuple[int, int]:
    """(height, width) of the box around a row's lines."""
    return max(ln.y1 for ln in row) - min(ln.y0 for ln in row), max(ln.x1 for ln in row) - min(ln.x0 for ln in row)


def is_stack_of_lines(height: int, width: int, lines: list[LineBox]) -> bool:
    """Whether the lines found in a small image are a few stacked text lines (a snippet of a receipt or a label)
    rather than one word or line with clutter: two or more rows that span much of the width with legible text of
    like size, none of them filling most of the height."""
    spans = []
    for row in _lines_by_row(lines):
        row_height, row_width = _extent(row)
        text_height = float(np.median([ln.height for ln in row]))
        if row_width >= STACK_MIN_WIDTH * width and text_height >= STACK_MIN_TEXT_PX:
            spans.append((row_height, text_height))
    if len(spans) < 2:
        return False
    texts = [t for _, t in spans]
    return max(h for h, _ in spans) < STACK_MAX_ROW_HEIGHT * height and max(texts) <= STACK_SIZE_RATIO * min(texts)


def is_single_line(image: np.ndarray, lines: list[LineBox] | None = None) -> bool:
    """Whether an image already is one line or word crop (read as a whole) rather than a page to cut up.

    True when the text found fills one row that takes up a good part of the image height (or one row fills most
    of the image and the rest is clutter), when no line is found in a small wide image (scene text), or when the
    image is too small to hold a page (at most 64 pixels high) and not blank; False for pages, blank and empty
    images.
    """
    gray = to_gray(image)
    if gray.size == 0:
        return False
    h, w = gray.shape
    if int(gray.max()) - int(gray.min()) < 12:
        return False  # blank
    if lines is None:
        lines = find_lines(gray)
    if h <= 64:
        return True
    if not lines:
        return h <= 200 and w >= h  # text the line finder misses (scene text); pages are taller
    extents = [_extent(row) for row in _lines_by_row(lines)]
    if len(extents) == 1:
        return extents[0][0] >= 0.3 * h
    # Several rows: still a crop when one row fills most of it and the others are clutter (scene text).
    tallest = max(extents)
    return tallest[0] >= 0.5 * h and tallest[1] >= 0.5 * w
