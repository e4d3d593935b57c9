"""Synthetic training images for a whole-image text detector: text in photos ("scene") and document pages ("page").

`synthesize_scenes` renders a folder in the layout of the real sets (`images/*.jpg` and `labels.jsonl`, see
`crnn_ocr.detect.scoring.read_labels`). Every image carries both levels: each word as a "word" region and each
line as a "line" region, with their texts. Deterministic for a seed, whatever the number of workers: image i
is drawn from a generator seeded with (seed, style, i).

Quads are the tight quads of the glyph pixels (alpha above `INK`), clockwise from the top-left corner of the
text in its reading direction (a word upside down starts at its bottom-right in the image). Straight text: the
glyphs' box in the text's own frame, carried through the same rotation and perspective as the pixels. Curved
text (along an arc): the minimum-area rectangle of the word's (or line's) warped pixels. Stacked vertical
words (letters upright, one below the other) get the upright box of their letters.

Scene: backgrounds are training photos with their text painted out (`crnn_ocr.detect.inpaint`; MSRA-TD500
train by default, cached once) or made here (gradients, noise textures, patterns, clutter shapes, zoomed crops
of the cleaned photos). 1 to 15 text instances (a word, a line of 2-6 words, or a block of 2-3 such lines; a share
of them Chinese, Japanese or Korean when asked for, `crnn_ocr.detect.cjk`) that never overlap, 10 px to a third of
the image height, rotated (mostly a little, some any angle, some vertical), with perspective, some along an arc,
contrasting or faint colours, outlines and shadows at times;
then occluding shapes, uneven light, blur, noise and JPEG. A word more than half hidden, less than 5 px tall
or hardly differing from the background under it is `ignore`, and so is its line.

Page: a portrait page of 1-3 columns of paragraphs and headings, at times a ruled table or a receipt-like
narrow column; paper and scan noise; the page is then turned by 0 (75%), 90, 180 or 270 degrees clockwise and
skewed a little. A line is the text of one line of one column (or table cell); the record's top-level
"rotation" holds the clockwise turn, so rotating the image that many degrees counter-clockwise makes it upright.

>>> # synthesize_scenes("synth_scenes", 10000, style="scene", workers=8)
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.datasets.synth.fonts import FontInfo, discover_fonts
from crnn_ocr.datasets.synth.render import Renderer
from crnn_ocr.datasets.synth.text import TextSampler
from crnn_ocr.detect.cjk import CJKText, discover_cjk_fonts
from crnn_ocr.detect.inpaint import prepare_backgrounds
from crnn_ocr.errors import ConfigError, DatasetError
from crnn_ocr.files import check_replaceable, discard, staging_path, swap_in

STYLES = ("scene", "page")
MARKER = "synth.json"
GENERATOR = "crnn_ocr.detect.synth"
LABELS_FILE = "labels.jsonl"
INK = 32  # alpha (of 255) above which a pixel is glyph ink, for quads and occlusion
DEFAULT_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "train" / "scenes" / "msra_td500_train"
MIN_FONT_PX = 10
MAX_SCENE_INSTANCES = 15
MIN_READABLE_PX = 5  # scene words whose ink is less tall than this are marked ignore (as unreadable)
ILLEGIBLE_CONTRAST = 12  # nor those whose letters differ from the background under them by fewer luma levels

log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _luma(colour: np.ndarray) -> float:
    return float(0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2])  # BGR


def _map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel-edge coordinates (a pixel spans [i, i + 1)) through a 2x3 or 3x3 matrix of OpenCV's warps, which
    act on pixel-centre coordinates."""
    pts = np.asarray(points, np.float64).reshape(-1, 2) - 0.5
    if matrix.shape[0] == 2:
        out = pts @ matrix[:, :2].T + matrix[:, 2]
    else:
        homog = np.c_[pts, np.ones(len(pts))] @ matrix.T
        out = homog[:, :2] / homog[:, 2:3]
    return out + 0.5


def _box_corners(box: Sequence[float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _ordered_quad(corners: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The 4 corners of a rectangle, clockwise in the image, starting at the top-left of text read along `direction`."""
    pts = np.asarray(corners, np.float64).reshape(4, 2)
    x, y = pts[:, 0], pts[:, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # shoelace: > 0 is clockwise with y pointing down
        pts = pts[::-1]
    unit = direction / (np.linalg.norm(direction) + 1e-9)
    edges = np.roll(pts, -1, axis=0) - pts
    lengths = np.linalg.norm(edges, axis=1) + 1e-9
    start = int(np.argmax((edges @ unit) / lengths))  # the top edge runs along the reading direction
    return np.roll(pts, -start, axis=0)


def _pixel_quad(xs: np.ndarray, ys: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The minimum-area rectangle around pixels (indices), to their outer edges, ordered along `direction`."""
    points = np.c_[xs, ys].astype(np.float32) + 0.5
    (cx, cy), (w, h), angle = cv2.minAreaRect(points)
    corners = cv2.boxPoints(((cx, cy), (w + 1, h + 1), angle))
    return _ordered_quad(corners, direction)


def _region(quad: np.ndarray, text: str, level: str, ignore: bool = False) -> dict[str, Any]:
    return {"quad": [[round(float(x), 1), round(float(y), 1)] for x, y in quad], "text": text, "level": level,
            "ignore": bool(ignore)}


def _clip_quad(quad: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.stack([np.clip(quad[:, 0], 0, width), np.clip(quad[:, 1], 0, height)], axis=1)


# ---------------------------------------------------------------- drawing text


def _word_mask(font: ImageFont.FreeTypeFont, text: str, spacing: float = 0.0) -> tuple[np.ndarray, int, int, float]:
    """`text` drawn with the pen at (0, 0) on the ascender line: (mask, left, top, advance), where (left, top)
    is where the mask's top-left pixel lies relative to the pen. `spacing`: extra pixels between letters."""
    if spacing == 0 or len(text) == 1:
        left, top, right, bottom = font.getbbox(text)
        canvas = Image.new("L", (max(right - left, 1) + 2, max(bottom - top, 1) + 2), 0)
        ImageDraw.Draw(canvas).text((1 - left, 1 - top), text, font=font, fill=255)
        return np.asarray(canvas), left - 1, top - 1, font.getlength(text)
    pens, x = [], 0.0
    for c in text:
        pens.append(int(round(x)))
        x += font.getlength(c) + spacing
    boxes = [font.getbbox(c) for c in text]
    left = min(p + b[0] for p, b in zip(pens, boxes)) - 1
    top = min(b[1] for b in boxes) - 1
    right = max(p + b[2] for p, b in zip(pens, boxes)) + 1
    bottom = max(b[3] for b in boxes) + 1
    canvas = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    draw = ImageDraw.Draw(canvas)
    for c, p in zip(text, pens):
        draw.text((p - left, -top), c, font=font, fill=255)
    return np.asarray(canvas), left, top, x - spacing


def _stack_mask(font: ImageFont.FreeTypeFont, text: str, spacing: float = 0.0) -> tuple[np.ndarray, int, int, float]:
    """`text` as a vertical stack of upright letters (as on shop signs), `spacing` extra pixels between them; same
    return as `_word_mask`."""
    masks = [_word_mask(font, c)[0] for c in text]
    gap = max(1, font.size // 8 + int(round(spacing)))
    width = max(m.shape[1] for m in masks)
    height = sum(m.shape[0] for m in masks) + gap * (len(masks) - 1)
    canvas = np.zeros((height, width), np.uint8)
    y = 0
    for m in masks:
        x = (width - m.shape[1]) // 2
        canvas[y:y + m.shape[0], x:x + m.shape[1]] = m
        y += m.shape[0] + gap
    return canvas, 0, 0, float(width)


@dataclass
class TextPatch:
    """Text drawn on its own canvas, before it is placed: glyph alpha, and per pixel the word it belongs to.

    Attributes:
        alpha: uint8 (h, w) glyph coverage (outline included when there is one).
        labels: uint8 (h, w), 1 + the index of the word an ink pixel belongs to, 0 elsewhere.
        words: the words, in reading order; `word_line[k]` is the line word k lies on.
        word_boxes: (x0, y0, x1, y1) ink box of each word on the canvas.
        lines: the lines' texts; `line_boxes` their ink boxes.
        core: the glyphs without their outline (None without an outline).
    """

    alpha: np.ndarray
    labels: np.ndarray
    words: list[str]
    word_line: list[int]
    word_boxes: np.ndarray
    lines: list[str]
    line_boxes: np.ndarray
    core: np.ndarray | None = None


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask > INK)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def compose_patch(font: ImageFont.FreeTypeFont, lines: Sequence[Sequence[str]], spacing: float = 0.0,
                  word_gap: float = 1.0, line_gap: float = 1.2, align: str = "left", stacked: bool = False,
                  outline: int = 0) -> TextPatch | None:
    """Draw lines of words on one canvas (a single stacked word when `stacked`); None when nothing is visible.

    Args:
        font: the font at its pixel size.
        lines: the words of each line.
        spacing: extra pixels between letters.
        word_gap: the gap between words in spaces.
        line_gap: the distance between baselines in font sizes.
        align: "left", "center" or "right".
        stacked: one word as upright letters one below the other.
        outline: the outline's width in pixels (0: none).
    """
    space = font.getlength(" ") * word_gap
    pieces: list[tuple[np.ndarray, int, int, int]] = []
    words, word_line, widths = [], [], []
    for li, line_words in enumerate(lines):
        pen, start = 0.0, len(pieces)
        for word in line_words:
            mask, left, top, advance = _stack_mask(font, word, spacing) if stacked else _word_mask(font, word, spacing)
            pieces.append((mask, int(round(pen)) + left, int(round(li * line_gap * font.size)) + top, len(words)))
            words.append(word)
            word_line.append(li)
            pen += advance + space
        widths.append((start, pen - space))
    full = max(w for _, w in widths)
    shift = {"left": 0.0, "center": 0.5, "right": 1.0}[align]
    for li, (start, width) in enumerate(widths):
        end = widths[li + 1][0] if li + 1 < len(widths) else len(pieces)
        dx = int(round((full - width) * shift))
        for k in range(start, end):
            m, x, y, w = pieces[k]
            pieces[k] = (m, x + dx, y, w)
    pad = 2 + outline
    x0 = min(x for _, x, _, _ in pieces) - pad
    y0 = min(y for _, _, y, _ in pieces) - pad
    x1 = max(x + m.shape[1] for m, x, _, _ in pieces) + pad
    y1 = max(y + m.shape[0] for m, _, y, _ in pieces) + pad
    alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
    labels = np.zeros_like(alpha)
    rects = []
    for mask, x, y, k in pieces:
        x, y = x - x0, y - y0
        h, w = mask.shape
        np.maximum(alpha[y:y + h, x:x + w], mask, out=alpha[y:y + h, x:x + w])
        labels[y:y + h, x:x + w][mask > INK] = k + 1
        rects.append((x, y, x + w, y + h))
    core = None
    if outline:
        core = alpha
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outline + 1, 2 * outline + 1))
        alpha = cv2.dilate(alpha, kernel)
        labels = cv2.dilate(labels, kernel)
        labels[alpha <= INK] = 0
        rects = [(x - outline, y - outline, x1_ + outline, y1_ + outline) for x, y, x1_, y1_ in rects]
    boxes = []
    for k, (rx0, ry0, rx1, ry1) in enumerate(rects):
        box = _ink_box((labels[ry0:ry1, rx0:rx1] == k + 1).astype(np.uint8) * 255)
        if box is None:
            return None
        boxes.append((box[0] + rx0, box[1] + ry0, box[2] + rx0, box[3] + ry0))
    word_boxes = np.array(boxes, np.float64)
    line_boxes = []
    for li in range(len(lines)):
        b = word_boxes[[k for k in range(len(words)) if word_line[k] == li]]
        line_boxes.append((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))
    return TextPatch(alpha, labels, words, word_line, word_boxes, [" ".join(ws) for ws in lines],
                     np.array(line_boxes, np.float64), core)


# ---------------------------------------------------------------- fonts


class FontBook:
    """Fonts by family, with regular, bold and monospaced choices; text is only given to a font that has
    every one of its glyphs (`Renderer.pick_font` of the crop renderer)."""

    def __init__(self, fonts: list[FontInfo]):
        if not fonts:
            raise DatasetError("no fonts to render with")
        self.picker = Renderer(fonts)
        self.by_family = self.picker.by_family
        self.families = self.picker.families
        self.mono = [f for f in self.families if self._is_mono(self.by_family[f][0])]

    @staticmethod
    def _is_mono(font: FontInfo) -> bool:
        try:
            f = _font(font.path, 20)
        except OSError:
            return False
        return abs(f.getlength("i") - f.getlength("W")) < 0.5

    def pick(self, text: str, rng: random.Random) -> FontInfo | None:
        return self.picker.pick_font(text, rng)

    def variant(self, family: str, bold: bool, rng: random.Random) -> FontInfo:
        """A regular (upright, normal weight) or bold face of `family`; any of its faces when it lacks one."""
        faces = self.by_family[family]

        def stem(f: FontInfo) -> str:
            return Path(f.path).stem.lower()

        upright = [f for f in faces if not any(s in stem(f) for s in ("italic", "oblique"))]
        if bold:
            chosen = [f for f in upright if "bold" in stem(f) and "semi" not in stem(f)]
        else:
            chosen = [f for f in upright if not any(s in stem(f) for s in ("bold", "light", "thin", "black", "heavy",
                                                                            "medium", "semi", "extra", "condensed"))]
        return rng.choice(sorted(chosen or upright or faces, key=lambda f: f.path))


# ---------------------------------------------------------------- backgrounds


def _value_noise(h: int, w: int, scale: float, nprng: np.random.Generator, channels: int = 1) -> np.ndarray:
    small = nprng.normal(0, 1, size=(max(2, int(h / scale) + 2), max(2, int(w / scale) + 2), channels)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return big.reshape(h, w, channels)


def _random_colour(rng: random.Random) -> np.ndarray:
    if rng.random() < 0.3:
        return np.full(3, rng.uniform(0, 255), np.float32)
    return np.array([rng.uniform(0, 255) for _ in range(3)], np.float32)


def _clutter(image: np.ndarray, rng: random.Random, count: int) -> None:
    """Shapes that are not text: long lines, boxes, discs, polygons, stripes and grids (in place)."""
    h, w = image.shape[:2]
    side = min(h, w)
    for _ in range(count):
        colour = tuple(float(c) for c in _random_colour(rng))
        layer = image.copy()
        kind = rng.random()
        if kind < 0.25:
            p1 = (rng.randint(0, w), rng.randint(0, h))
            angle = rng.uniform(0, math.pi)
            length = rng.uniform(0.3, 1.2) * side
            p2 = (int(p1[0] + length * math.cos(angle)), int(p1[1] + length * math.sin(angle)))
            cv2.line(layer, p1, p2, colour, rng.randint(1, max(2, side // 60)), cv2.LINE_AA)
        elif kind < 0.45:
            x, y = rng.randint(-w // 4, w), rng.randint(-h // 4, h)
            bw, bh = int(rng.uniform(0.08, 0.6) * w), int(rng.uniform(0.08, 0.6) * h)
            thickness = -1 if rng.random() < 0.6 else rng.randint(2, max(3, side // 80))
            cv2.rectangle(layer, (x, y), (x + bw, y + bh), colour, thickness)
        elif kind < 0.6:
            centre = (rng.randint(0, w), rng.randint(0, h))
            axes = (int(rng.uniform(0.04, 0.3) * side), int(rng.uniform(0.04, 0.3) * side))
            cv2.ellipse(layer, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1 if rng.random() < 0.7 else 3,
                        cv2.LINE_AA)
        elif kind < 0.72:
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.08, 0.4) * side
            n = rng.randint(3, 7)
            angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
            pts = np.array([[cx + r * math.cos(a), cy + r * math.sin(a)] for a in angles], np.int32)
            cv2.fillPoly(layer, [pts], colour, cv2.LINE_AA)
        elif kind < 0.87:  # a band of parallel stripes (railings, blinds, shelves)
            period = rng.uniform(0.015, 0.06) * side
            thickness = max(1, int(period * rng.uniform(0.15, 0.5)))
            vertical = rng.random() < 0.5
            start, stop = sorted((rng.uniform(0, w if vertical else h), rng.uniform(0, w if vertical else h)))
            lo, hi = sorted((rng.randint(0, h if vertical else w), rng.randint(0, h if vertical else w)))
            pos = start
            while pos < stop:
                p = int(pos)
                cv2.line(layer, (p, lo) if vertical else (lo, p), (p, hi) if vertical else (hi, p), colour, thickness)
                pos += period
        else:  # a grid (windows, tiles)
            x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)
            x1, y1 = rng.randint(x0 + side // 8, w + side // 8), rng.randint(y0 + side // 8, h + side // 8)
            step = rng.uniform(0.04, 0.15) * side
            thickness = rng.randint(1, max(2, side // 150))
            for x in np.arange(x0, x1, step):
                cv2.line(layer, (int(x), y0), (int(x), y1), colour, thickness)
            for y in np.arange(y0, y1, step * rng.uniform(0.6, 1.6)):
                cv2.line(layer, (x0, int(y)), (x1, int(y)), colour, thickness)
        opacity = 1.0 if rng.random() < 0.6 else rng.uniform(0.25, 0.9)
        cv2.addWeighted(layer, opacity, image, 1 - opacity, 0, dst=image)


class Backgrounds:
    """Scene backgrounds: painted-out photos (`photos`, cleaned files) and procedural ones."""

    def __init__(self, photos: Sequence[str | Path] = ()):
        self.photos = [str(p) for p in photos]

    @staticmethod
    @lru_cache(maxsize=24)
    def _load(path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{path}: cannot read the background")
        return image

    def photo_crop(self, h: int, w: int, rng: random.Random, zoom: tuple[float, float] = (0.55, 1.0)) -> np.ndarray:
        photo = self._load(rng.choice(self.photos))
        ph, pw = photo.shape[:2]
        f = rng.uniform(*zoom)
        ch, cw = (ph * f, ph * f * w / h) if ph * w / h <= pw else (pw * f * h / w, pw * f)
        ch, cw = max(8, min(ph, int(ch))), max(8, min(pw, int(cw)))
        y, x = rng.randint(0, ph - ch), rng.randint(0, pw - cw)
        crop = photo[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.15:
            crop = crop[::-1]
        out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if rng.random() < 0.3:  # colour and brightness jitter
            out = out * np.array([rng.uniform(0.8, 1.2) for _ in range(3)], np.float32) + rng.uniform(-30, 30)
        return out

    def procedural(self, h: int, w: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        a, b = _random_colour(rng), _random_colour(rng)
        kind = rng.random()
        if kind < 0.25:  # linear or radial gradient
            if rng.random() < 0.6:
                angle = rng.uniform(0, 2 * math.pi)
                xs, ys = np.meshgrid(np.linspace(0, 1, w, dtype=np.float32), np.linspace(0, 1, h, dtype=np.float32))
                t = xs * math.cos(angle) + ys * math.sin(angle)
            else:
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
                t = np.hypot(xs - cx, ys - cy)
            t = (t - t.min()) / (np.ptp(t) + 1e-6)
            image = a * (1 - t[..., None]) + b * t[..., None]
        elif kind < 0.5:  # noise texture at one or more scales (plaster, wood, stone, foliage)
            image = np.broadcast_to(a, (h, w, 3)).astype(np.float32)
            for _ in range(rng.randint(1, 3)):
                scale = rng.choice((2, 4, 8, 24, 64))
                noise = _value_noise(h, w, scale, nprng, rng.choice((1, 3)))
                image = image + noise * (rng.uniform(4, 18) if scale <= 4 else rng.uniform(8, 45))
            if rng.random() < 0.3:
                image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1, 3)) if rng.random() < 0.5 else image
        elif kind < 0.65:  # regular pattern: stripes, checks, dots
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            period = rng.uniform(0.02, 0.12) * min(h, w)
            angle = rng.uniform(0, math.pi)
            u = (xs * math.cos(angle) + ys * math.sin(angle)) / period
            v = (-xs * math.sin(angle) + ys * math.cos(angle)) / period
            pattern = rng.random()
            if pattern < 0.4:
                t = (np.sin(2 * math.pi * u) > rng.uniform(-0.6, 0.6)).astype(np.float32)
            elif pattern < 0.7:
                t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
            else:
                t = (np.hypot(u - np.round(u), v - np.round(v)) < rng.uniform(0.15, 0.4)).astype(np.float32)
            t = cv2.GaussianBlur(t, (0, 0), 0.8)
            image = a * (1 - t[..., None]) + b * t[..., None]
        elif kind < 0.85 and self.photos:  # a zoomed, flipped piece of a photo as texture
            image = self.photo_crop(h, w, rng, zoom=(0.1, 0.4))
            if rng.random() < 0.5:
                image = image * rng.uniform(0.5, 0.9) + a * rng.uniform(0.1, 0.5)
        else:
            image = np.broadcast_to(a, (h, w, 3)).astype(np.float32) + _value_noise(h, w, 4, nprng) * rng.uniform(1, 6)
        image = np.ascontiguousarray(image, dtype=np.float32)
        if rng.random() < 0.75:
            _clutter(image, rng, rng.randint(2, 25))
        return image

    def sample(self, h: int, w: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        if self.photos and rng.random() < 0.55:
            image = self.photo_crop(h, w, rng)
            if rng.random() < 0.2:
                _clutter(image, rng, rng.randint(1, 6))
            return image
        return self.procedural(h, w, rng, nprng)


# ---------------------------------------------------------------- scenes


def _bend(patch: TextPatch, radius: float, smile: bool) -> tuple[TextPatch, Any]:
    """The patch bent along a circle of `radius` (through the middle of its height): "smile" curves it like the
    bottom of a circle, else like the top. Returns the bent patch (boxes unused) and a function mapping canvas
    points to bent points and the reading direction there."""
    h, w = patch.alpha.shape
    sign = 1.0 if smile else -1.0

    def forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = (x - w / 2) / radius
        r = radius + sign * (y - h / 2)
        return r * np.sin(theta), sign * r * np.cos(theta)

    edge = np.linspace(0, 1, 24)
    bx = np.concatenate([edge * w, np.full(24, w), edge * w, np.zeros(24)])
    by = np.concatenate([np.zeros(24), edge * h, np.full(24, h), edge * h])
    fx, fy = forward(bx, by)
    ox, oy = math.floor(fx.min()) - 1, math.floor(fy.min()) - 1
    out_w, out_h = math.ceil(fx.max()) - ox + 2, math.ceil(fy.max()) - oy + 2
    xs, ys = np.meshgrid(np.arange(out_w, dtype=np.float32) + ox, np.arange(out_h, dtype=np.float32) + oy)
    r = np.hypot(xs, ys)
    theta = np.arctan2(xs, sign * ys)
    map_x = (theta * radius + w / 2).astype(np.float32)
    map_y = (sign * (r - radius) + h / 2).astype(np.float32)
    alpha = cv2.remap(patch.alpha, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    labels = cv2.remap(patch.labels, map_x, map_y, cv2.INTER_NEAREST, borderValue=0)
    core = None if patch.core is None else cv2.remap(patch.core, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    labels[alpha <= INK] = 0

    def place(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        px, py = forward(np.array(x), np.array(y))
        theta = (x - w / 2) / radius
        return np.array([float(px) - ox, float(py) - oy]), np.array([math.cos(theta), -sign * math.sin(theta)])

    bent = TextPatch(alpha, labels, patch.words, patch.word_line, patch.word_boxes, patch.lines, patch.line_boxes, core)
    return bent, place


@dataclass
class _Placed:
    """A text instance placed in the image: its regions and, per word, its pixels (window offset and mask)."""

    word_quads: list[np.ndarray]
    line_quads: list[np.ndarray]
    patch: TextPatch
    word_pixels: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    illegible: list[bool] = field(default_factory=list)


class SceneSynth:
    """Renders one scene image and its regions at a time. Deterministic for a `random.Random`."""

    def __init__(self, fonts: list[FontInfo], photos: Sequence[str | Path] = (), cjk_share: float = 0.0,
                 cjk_fonts: Sequence[FontInfo] = (), sign_share: float = 0.0):
        self.book = FontBook(fonts)
        self.sampler = TextSampler()
        self.backgrounds = Backgrounds(photos)
        self.cjk_share = cjk_share
        self.sign_share = sign_share
        self.cjk = CJKText(list(cjk_fonts)) if cjk_share > 0 else None

    # -- text
    def _token(self, rng: random.Random) -> str:
        token = self.sampler.token(rng, lines=True)
        return token.upper() if rng.random() < 0.1 else token

    def _text(self, rng: random.Random) -> list[list[str]]:
        r = rng.random()
        n_lines = 1 if r < 0.8 else rng.choice((2, 2, 3))
        lines = []
        caps = rng.random() < 0.25
        for _ in range(n_lines):
            n_words = 1 if n_lines == 1 and rng.random() < 0.45 else rng.randint(2, 6)
            words: list[str] = []
            while len(words) < n_words:
                words.extend(self._token(rng).split())
            words = [w.upper() if caps else w for w in words[:n_words]]
            lines.append(words)
        return lines

    # -- geometry
    @staticmethod
    def _matrix(rng: random.Random, w: int, h: int, angle: float, perspective: bool) -> np.ndarray:
        """Canvas (centre coordinates) to image coordinates around the origin: perspective, then rotation."""
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        if perspective:
            near = rng.uniform(0.65, 1.0)
            left_scale, right_scale = (1.0, near) if rng.random() < 0.5 else (near, 1.0)
            top_shift = rng.uniform(-0.15, 0.15) * h
            dst = np.float32([[0, h / 2 - left_scale * h / 2], [w, h / 2 - right_scale * h / 2 + top_shift],
                              [w, h / 2 + right_scale * h / 2 + top_shift], [0, h / 2 + left_scale * h / 2]])
            dst[:, 0] += np.float32([rng.uniform(-0.04, 0.04) * w for _ in range(4)])
            persp = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
        else:
            persp = np.eye(3)
        centre = _map_points(persp, np.array([[w / 2, h / 2]]))[0] - 0.5
        rot = np.eye(3)
        rot[:2] = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
        rot[0, 2] -= centre[0]
        rot[1, 2] -= centre[1]
        return rot @ persp

    @staticmethod
    def _angle(rng: random.Random) -> tuple[float, bool]:
        """(degrees counter-clockwise, stacked vertical letters)."""
        r = rng.random()
        if r < 0.65:
            return rng.gauss(0, 4), False
        if r < 0.82:
            return rng.uniform(-35, 35), False
        if r < 0.9:
            return rng.uniform(-180, 180), False
        if r < 0.97:
            return rng.choice((90, -90)) + rng.gauss(0, 3), False
        return rng.gauss(0, 3), True

    @staticmethod
    def _colours(rng: random.Random, under: np.ndarray, allow_faint: bool) -> tuple[np.ndarray, bool]:
        """A text colour against the background lumas `under` the letters, and whether it is a faint one.

        Contrast is judged where it is weakest (the 5th percentile of the luma differences), so text across a
        gradient or a busy photo stays visible; faint text differs by 15-60 levels everywhere."""

        def spread(colour: np.ndarray) -> tuple[float, float]:
            d = np.abs(_luma(colour) - under)
            return float(np.percentile(d, 5)), float(np.percentile(d, 95))

        if allow_faint and rng.random() < 0.12:
            for _ in range(30):
                colour = _random_colour(rng)
                low, high = spread(colour)
                if low >= 15 and high <= 60:
                    return colour, True
        best, best_low = np.zeros(3, np.float32), -1.0
        for colour in [_random_colour(rng) for _ in range(30)] + [np.zeros(3, np.float32), np.full(3, 255, np.float32)]:
            low = spread(colour)[0]
            if low >= 70:
                return colour, False
            if low > best_low:
                best, best_low = colour, low
        return best, False

    # -- one instance
    def _instance(self, image: np.ndarray, occupied: np.ndarray, rng: random.Random, shrink: float,
                  sign: bool = False) -> _Placed | None:
        """Draw one text instance where it overlaps none before it (`occupied`, a quarter-scale map); None when
        it does not fit. `shrink` scales the largest size allowed (later tries are smaller); a `sign` is one or
        two words, large, often spaced wide."""
        H, W = image.shape[:2]
        if self.cjk is not None and rng.random() < self.cjk_share:
            lines, info = self.cjk.sample(rng)
        else:
            lines = self._text(rng)
            info = self.book.pick(" ".join(" ".join(ws) for ws in lines), rng)
        if info is None:
            return None
        angle, stacked = self._angle(rng)
        if stacked:
            lines = [[max(lines[0], key=len)[:10]]]
        elif sign:
            lines = [lines[0][:1 if rng.random() < 0.7 else 2]]
        curved = not stacked and len(lines) == 1 and rng.random() < 0.12
        if sign:
            low, high = max(MIN_FONT_PX, H / 12 * shrink), max(MIN_FONT_PX + 1, H / 1.6 * shrink)
            spacing_em = rng.choice((0, 0.3, 0.6, 1.0))
        else:
            low, high = MIN_FONT_PX, max(MIN_FONT_PX + 1, H / 3 * shrink)
            spacing_em = rng.choice((0, 0, 0, 0, 0.05, 0.1, 0.2, -0.03)) if not stacked else 0
        size = int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
        style = {"word_gap": rng.uniform(0.8, 1.6), "line_gap": rng.uniform(1.05, 1.4),
                 "align": rng.choice(("left", "center", "right")), "stacked": stacked}
        outline = rng.uniform(0.03, 0.08) if rng.random() < 0.12 else 0.0
        rad = math.radians(angle)
        cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
        for _ in range(2):  # a second try at the size that fits the image
            patch = compose_patch(_font(info.path, size), lines, spacing=spacing_em * size,
                                  outline=max(1, int(round(size * outline))) if outline else 0, **style)
            if patch is None:
                return None
            h, w = patch.alpha.shape
            fit = min((W - 8) / (w * cos + h * sin), (H - 8) / (w * sin + h * cos))
            if fit >= 1:
                break
            size = int(size * fit * 0.95)
            if size < MIN_FONT_PX:
                return None
        else:
            return None
        place = None
        if curved:
            span = rng.uniform(0.35, 1.3) if len(patch.words) == 1 else rng.uniform(0.3, 0.9)
            radius = max(w / span, 1.6 * h)
            patch, place = _bend(patch, radius, smile=rng.random() < 0.5)
            h, w = patch.alpha.shape
        matrix0 = self._matrix(rng, w, h, angle, perspective=rng.random() < 0.3)
        corners = _map_points(matrix0, _box_corners((0, 0, w, h)))
        span_x, span_y = np.ptp(corners[:, 0]), np.ptp(corners[:, 1])
        margin = 2
        if span_x > W - 2 * margin or span_y > H - 2 * margin:
            return None
        ys, xs = np.nonzero(patch.alpha[::2, ::2] > INK)
        if len(xs) == 0:
            return None
        hull = cv2.convexHull(np.c_[xs * 2, ys * 2].astype(np.float32)).reshape(-1, 2)
        scale = occupied.shape[0] / H
        pad = max(1, int(round(0.25 * size * scale)))
        for _ in range(12):
            tx = rng.uniform(margin - corners[:, 0].min(), W - margin - corners[:, 0].max())
            ty = rng.uniform(margin - corners[:, 1].min(), H - margin - corners[:, 1].max())
            shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)
            matrix = shift @ matrix0
            poly = np.round(_map_points(matrix, hull) * scale).astype(np.int32)
            footprint = np.zeros_like(occupied)
            cv2.fillPoly(footprint, [poly], 1)
            cv2.polylines(footprint, [poly], True, 1, thickness=2 * pad + 1)
            if not (footprint & occupied).any():
                occupied |= footprint
                break
        else:
            return None
        return self._draw(image, patch, matrix, place, size, rng)

    def _draw(self, image: np.ndarray, patch: TextPatch, matrix: np.ndarray, place: Any, size: int,
              rng: random.Random) -> _Placed:
        H, W = image.shape[:2]
        h, w = patch.alpha.shape
        corners = _map_points(matrix, _box_corners((0, 0, w, h)))
        x0, y0 = max(0, int(math.floor(corners[:, 0].min()))), max(0, int(math.floor(corners[:, 1].min())))
        x1, y1 = min(W, int(math.ceil(corners[:, 0].max()))), min(H, int(math.ceil(corners[:, 1].max())))
        local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ matrix
        dsize = (x1 - x0, y1 - y0)
        alpha = cv2.warpPerspective(patch.alpha, local, dsize, flags=cv2.INTER_LINEAR, borderValue=0)
        labels = cv2.warpPerspective(patch.labels, local, dsize, flags=cv2.INTER_NEAREST, borderValue=0)
        labels[alpha <= INK] = 0
        window = image[y0:y1, x0:x1]
        lumas = window @ np.array([0.114, 0.587, 0.299], np.float32)
        under = lumas[alpha > INK] if (alpha > INK).any() else lumas.ravel()
        fill, faint = self._colours(rng, under[:: under.size // 4000 + 1], allow_faint=size >= 16)
        base_fill = fill
        a = alpha.astype(np.float32)[..., None] / 255.0
        if rng.random() < 0.12 and not faint:  # drop shadow
            dx, dy = rng.randint(-4, 4) or 2, rng.randint(1, 5)
            shadow = np.roll(np.roll(a, dy, axis=0), dx, axis=1)
            shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.5, 2.5))[..., None] * rng.uniform(0.4, 0.85)
            shade = np.full(3, 0 if _luma(fill) > 90 else 255, np.float32)
            window[:] = window * (1 - shadow) + shade * shadow
        if patch.core is not None:
            core = cv2.warpPerspective(patch.core, local, dsize, flags=cv2.INTER_LINEAR, borderValue=0)
            edge = 255 - fill if rng.random() < 0.7 else _random_colour(rng)
            window[:] = window * (1 - a) + edge * a
            a = core.astype(np.float32)[..., None] / 255.0
        if rng.random() < 0.15:  # a gradient across the letters
            other = np.clip(fill + np.array([rng.uniform(-70, 70) for _ in range(3)], np.float32), 0, 255)
            t = np.linspace(0, 1, a.shape[0 if rng.random() < 0.5 else 1], dtype=np.float32)
            t = t[:, None, None] if len(t) == a.shape[0] else t[None, :, None]
            fill = fill * (1 - t) + other * t
        opacity = 1.0 if rng.random() < 0.8 else rng.uniform(0.6, 0.95)
        window[:] = window * (1 - a * opacity) + fill * a * opacity

        placed = _Placed([], [], patch)
        n_words = len(patch.words)
        pixels = [np.nonzero(labels == k + 1) for k in range(n_words)]
        for k in range(n_words):
            ys, xs = pixels[k]
            placed.word_pixels.append((x0, y0, (labels == k + 1)))
            contrast = np.median(np.abs(_luma(base_fill) - lumas[ys, xs])) if len(xs) else 0.0
            placed.illegible.append(patch.core is None and contrast < ILLEGIBLE_CONTRAST)
            if place is None:
                placed.word_quads.append(_map_points(matrix, _box_corners(patch.word_boxes[k])))
            else:
                bx = patch.word_boxes[k]
                point, direction = place((bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2)
                image_dir = _map_points(matrix, np.array([point, point + direction * 8]))
                direction = image_dir[1] - image_dir[0]
                if len(xs) == 0:
                    placed.word_quads.append(_map_points(matrix, np.repeat(point[None], 4, axis=0)))
                else:
                    placed.word_quads.append(_pixel_quad(xs + x0, ys + y0, direction))
        for li in range(len(patch.lines)):
            if place is None:
                placed.line_quads.append(_map_points(matrix, _box_corners(patch.line_boxes[li])))
            else:
                ks = [k for k in range(n_words) if patch.word_line[k] == li]
                xs = np.concatenate([pixels[k][1] for k in ks]) + x0
                ys = np.concatenate([pixels[k][0] for k in ks]) + y0
                bx = patch.line_boxes[li]
                point, direction = place((bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2)
                image_dir = _map_points(matrix, np.array([point, point + direction * 8]))
                placed.line_quads.append(_pixel_quad(xs, ys, image_dir[1] - image_dir[0]))
        return placed

    # -- the image
    def _size(self, rng: random.Random) -> tuple[int, int]:
        long = rng.randint(640, 1280)
        aspect = rng.choice((4 / 3, 3 / 2, 16 / 9, 1.0, 5 / 4, 2.0)) * rng.uniform(0.95, 1.05)
        short = int(round(long / aspect))
        return (long, short) if rng.random() < 0.3 else (short, long)

    def render(self, rng: random.Random) -> tuple[np.ndarray, dict[str, Any]]:
        """(BGR uint8 image, {"width", "height", "regions"})."""
        nprng = np.random.default_rng(rng.getrandbits(64))
        H, W = self._size(rng)
        image = self.backgrounds.sample(H, W, rng, nprng)
        occupied = np.zeros((max(1, H // 4), max(1, W // 4)), np.uint8)
        wanted = min(MAX_SCENE_INSTANCES, 1 + int(rng.expovariate(1 / 5))) if rng.random() < 0.9 else rng.randint(1, 15)
        placed: list[_Placed] = []
        signs = rng.choice((1, 1, 2)) if self.sign_share > 0 and rng.random() < self.sign_share else 0
        for _ in range(3 * signs):  # first, on the empty image: a few tries each, a large sign does not always fit
            if len(placed) == signs:
                break
            instance = self._instance(image, occupied, rng, 1.0, sign=True)
            if instance is not None:
                placed.append(instance)
        attempts = 0
        while len(placed) < wanted and attempts < 4 * wanted + 10:
            attempts += 1
            shrink = 1.0 if attempts <= wanted else 0.5 ** min(3, attempts // wanted)
            instance = self._instance(image, occupied, rng, shrink)
            if instance is not None:
                placed.append(instance)
        covered = self._occlude(image, placed, rng, nprng)
        image = self._degrade(image, rng, nprng)
        regions = []
        for p_index, p in enumerate(placed):
            line_ignored = set()
            for k, quad in enumerate(p.word_quads):
                ignore = (covered[p_index][k] > 0.5 or p.illegible[k]
                          or np.linalg.norm(quad[3] - quad[0]) < MIN_READABLE_PX)
                if ignore:
                    line_ignored.add(p.patch.word_line[k])
                regions.append(_region(_clip_quad(quad, W, H), p.patch.words[k], "word", ignore))
            for li, quad in enumerate(p.line_quads):
                regions.append(_region(_clip_quad(quad, W, H), p.patch.lines[li], "line", li in line_ignored))
        return image, {"width": W, "height": H, "regions": regions}

    def _occlude(self, image: np.ndarray, placed: list[_Placed], rng: random.Random,
                 nprng: np.random.Generator) -> list[list[float]]:
        """Shapes over some words (poles, leaves, stickers); the share of each word's ink they hide."""
        covered = [[0.0] * len(p.patch.words) for p in placed]
        if not placed or rng.random() > 0.25:
            return covered
        H, W = image.shape[:2]
        mask = np.zeros((H, W), np.uint8)
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(placed)
            k = rng.randrange(len(p.word_quads))
            quad = p.word_quads[k]
            centre = quad.mean(axis=0) + (quad[1] - quad[0]) * rng.uniform(-0.5, 0.5)
            height = max(4.0, float(np.linalg.norm(quad[3] - quad[0])))
            kind = rng.random()
            cx, cy = int(centre[0]), int(centre[1])
            if kind < 0.4:  # a bar across the text
                angle = rng.uniform(0, math.pi)
                length = height * rng.uniform(2, 6)
                dx, dy = length * math.cos(angle), length * math.sin(angle)
                cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 255,
                         max(2, int(height * rng.uniform(0.2, 1.0))))
            elif kind < 0.75:
                axes = (max(2, int(height * rng.uniform(0.4, 1.6))), max(2, int(height * rng.uniform(0.4, 1.6))))
                cv2.ellipse(mask, (cx, cy), axes, rng.uniform(0, 180), 0, 360, 255, -1)
            else:
                r = height * rng.uniform(0.5, 1.5)
                pts = np.array([[cx + r * math.cos(a), cy + r * math.sin(a)]
                                for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(3, 6)))], np.int32)
                cv2.fillPoly(mask, [pts], 255)
        if rng.random() < 0.5:
            paint = np.broadcast_to(_random_colour(rng), image.shape) + _value_noise(H, W, 6, nprng) * rng.uniform(0, 25)
        else:
            paint = self.backgrounds.sample(H, W, rng, nprng)
        inside = mask > 0
        image[inside] = paint[inside]
        for pi, p in enumerate(placed):
            for k, (x0, y0, word) in enumerate(p.word_pixels):
                total = int(word.sum())
                if total:
                    hidden = np.count_nonzero(word & inside[y0:y0 + word.shape[0], x0:x0 + word.shape[1]])
                    covered[pi][k] = hidden / total
        return covered

    @staticmethod
    def _degrade(image: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        H, W = image.shape[:2]
        if rng.random() < 0.4:  # uneven light: a ramp or a vignette
            if rng.random() < 0.6:
                angle = rng.uniform(0, 2 * math.pi)
                xs, ys = np.meshgrid(np.linspace(-1, 1, W, dtype=np.float32), np.linspace(-1, 1, H, dtype=np.float32))
                gain = 1 + rng.uniform(0.1, 0.45) * (xs * math.cos(angle) + ys * math.sin(angle))
            else:
                gain = 1 + _value_noise(H, W, max(H, W) / 3, nprng)[..., 0] * rng.uniform(0.1, 0.3)
            image = image * gain[..., None]
        image = np.clip(image, 0, 255)
        if rng.random() < 0.3:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.5))
        elif rng.random() < 0.06:
            k = rng.choice((3, 5, 7))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
        if rng.random() < 0.15:
            f = rng.uniform(0.5, 0.8)
            small = cv2.resize(image, (max(1, int(W * f)), max(1, int(H * f))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.35:
            image = image + nprng.normal(0, rng.uniform(2, 10), size=image.shape).astype(np.float32)
        return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- pages


@dataclass
class _PageText:
    """Words drawn on the upright page (`page`, float BGR): ink boxes and texts, grouped into lines."""

    page: np.ndarray
    word_boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    lines: list[tuple[str, list[int]]] = field(default_factory=list)


class PageSynth:
    """Renders one document page (upright, then turned and skewed) and its regions at a time."""

    def __init__(self, fonts: list[FontInfo]):
        self.book = FontBook(fonts)
        self.prose = TextSampler(style="document")
        self.tokens = TextSampler()

    # -- drawing
    @staticmethod
    def _word(text: _PageText, font: ImageFont.FreeTypeFont, word: str, x: float, y: float, ink: np.ndarray) -> float:
        """Draw `word` with the pen at (x, y) (ascender line); record its box; return its advance."""
        mask, left, top, advance = _word_mask(font, word)
        box = _ink_box(mask)
        if box is None:
            return advance
        px, py = int(round(x)) + left, int(round(y)) + top
        h, w = mask.shape
        H, W = text.page.shape[:2]
        if px < 0 or py < 0 or px + w > W or py + h > H:
            return advance
        a = mask.astype(np.float32)[..., None] / 255.0
        region = text.page[py:py + h, px:px + w]
        region[:] = region * (1 - a) + ink * a
        text.word_boxes.append((px + box[0], py + box[1], px + box[2], py + box[3]))
        text.words.append(word)
        return advance

    def _line(self, text: _PageText, font: ImageFont.FreeTypeFont, words: Sequence[str], x: float, y: float,
              ink: np.ndarray, gap: float | None = None) -> None:
        """Draw one line of words from (x, y); it becomes one line region."""
        gap = font.getlength(" ") if gap is None else gap
        first = len(text.words)
        for word in words:
            x += self._word(text, font, word, x, y, ink) + gap
        indexes = list(range(first, len(text.words)))
        if indexes:
            text.lines.append((" ".join(text.words[k] for k in indexes), indexes))

    @staticmethod
    def _covered(info: FontInfo, words: list[str]) -> list[str]:
        return [w for w in words if info.covers(w)]

    def _words(self, info: FontInfo, count: int, source: Any, rng: random.Random) -> list[str]:
        """At least `count` words (fewer if the font lacks too many glyphs) of `source(rng)`'s texts."""
        words: list[str] = []
        for _ in range(4 * count + 8):
            if len(words) >= count:
                break
            words.extend(self._covered(info, source(rng).split()))
        return words

    # -- blocks
    def _paragraph(self, text: _PageText, info: FontInfo, size: int, x0: float, x1: float, y: float, y_end: float,
                   ink: np.ndarray, rng: random.Random, spacing: float, justify: bool) -> float:
        """Running text wrapped to [x0, x1] from `y` while lines fit above `y_end`; returns the next free y."""
        font = _font(info.path, size)
        space = font.getlength(" ")
        words = self._words(info, rng.randint(8, 120), self.prose.prose_line, rng)
        indent = size * rng.uniform(1, 3) if rng.random() < 0.4 else 0.0
        wrapped: list[list[str]] = []
        line: list[str] = []
        width = indent
        for word in words:
            length = font.getlength(word)
            if length > x1 - x0 - indent:
                continue
            if line and width + space + length > x1 - x0:
                wrapped.append(line)
                line, width = [], 0.0
            width += (space if line else 0.0) + length
            line.append(word)
        if line:
            wrapped.append(line)
        step = size * spacing
        for n, line in enumerate(wrapped):
            if y + step > y_end:
                break
            start = x0 + (indent if n == 0 else 0.0)
            gap = space
            if justify and n + 1 < len(wrapped) and len(line) > 1:
                used = sum(font.getlength(w) for w in line)
                gap = min(3 * space, max(space, (x1 - start - used) / (len(line) - 1)))
            self._line(text, font, line, start, y, ink, gap)
            y += step
        return y

    def _heading(self, text: _PageText, info: FontInfo, size: int, x0: float, x1: float, y: float, ink: np.ndarray,
                 rng: random.Random, centre: bool = False) -> float:
        """A heading of 1-6 words (numbered at times) on one line from `y`; returns the next free y."""
        font = _font(info.path, size)
        n = rng.randint(1, 6)
        words = self._words(info, n, lambda r: self.tokens.word(r).strip(".,:;!?"), rng)[:n]
        if rng.random() < 0.3:
            words.insert(0, f"{rng.randint(1, 12)}." + (f"{rng.randint(1, 9)}" if rng.random() < 0.5 else ""))
        if rng.random() < 0.5:
            words = [w[:1].upper() + w[1:] for w in words]
        elif rng.random() < 0.3:
            words = [w.upper() for w in words]
        while words and font.getlength(" ".join(words)) > x1 - x0:
            words.pop()
        if not words:
            return y
        x = x0 + ((x1 - x0 - font.getlength(" ".join(words))) / 2 if centre else 0)
        self._line(text, font, words, x, y, ink)
        return y + size * rng.uniform(1.5, 2.2)

    def _cell_text(self, rng: random.Random, header: bool) -> list[str]:
        if header:
            return [self.tokens.word(rng).strip(".,:;!?\"'()").capitalize() for _ in range(rng.randint(1, 2))]
        r = rng.random()
        if r < 0.45:
            return self.tokens.number(rng).split()
        if r < 0.6:
            return self.tokens.date_or_time(rng).split()
        if r < 0.7:
            return self.tokens.code(rng).split()
        return [self.tokens.word(rng) for _ in range(rng.randint(1, 3))]

    def _table(self, text: _PageText, body: FontInfo, bold: FontInfo, size: int, x0: float, x1: float, y: float,
               y_end: float, ink: np.ndarray, rng: random.Random) -> float:
        """A table (bold header row, ruled at times) from `y` above `y_end`; each cell is a line; returns the next free y."""
        page = text.page
        font, head_font = _font(body.path, size), _font(bold.path, size)
        n_cols = rng.randint(2, 6)
        row_h = size * rng.uniform(1.6, 2.3)
        n_rows = min(rng.randint(3, 12), int((y_end - y) / row_h))
        if n_rows < 2:
            return y
        weights = np.array([rng.uniform(1, 3) for _ in range(n_cols)])
        edges = x0 + np.concatenate([[0], np.cumsum(weights) / weights.sum()]) * (x1 - x0)
        rules = rng.random()
        pad = size * 0.4
        colour = tuple(float(c) for c in ink)
        thickness = rng.choice((1, 1, 2))
        for r in range(n_rows):
            top = y + r * row_h
            for c in range(n_cols):
                info, f = (bold, head_font) if r == 0 else (body, font)
                words = self._covered(info, self._cell_text(rng, r == 0))
                width = edges[c + 1] - edges[c] - 2 * pad
                while words and f.getlength(" ".join(words)) > width:
                    words.pop()
                if not words:
                    continue
                numeric = any(ch.isdigit() for ch in words[0])
                x = edges[c + 1] - pad - f.getlength(" ".join(words)) if numeric and r else edges[c] + pad
                baseline_top = top + (row_h - size * 1.15) / 2
                self._line(text, f, words, x, baseline_top, ink)
            if rules < 0.8:
                cv2.line(page, (int(x0), int(top)), (int(x1), int(top)), colour, thickness)
        bottom = y + n_rows * row_h
        if rules < 0.8:
            cv2.line(page, (int(x0), int(bottom)), (int(x1), int(bottom)), colour, thickness)
        if rules < 0.45:
            for e in edges:
                cv2.line(page, (int(e), int(y)), (int(e), int(bottom)), colour, thickness)
        return bottom + size * 1.5

    def _receipt(self, text: _PageText, rng: random.Random) -> None:
        """A narrow receipt column: centred shop lines, items with right-aligned prices, a total."""
        page = text.page
        H, W = page.shape[:2]
        families = self.book.mono if self.book.mono and rng.random() < 0.7 else self.book.families
        info = self.book.variant(rng.choice(families), bold=False, rng=rng)
        width = W * rng.uniform(0.45, 0.8)
        size = max(MIN_FONT_PX, int(width / rng.uniform(24, 36)))
        font = _font(info.path, size)
        x0 = float(np.clip((W - width) / 2 + rng.uniform(-0.1, 0.1) * W, 2 * size, W - width - 2 * size))
        x1 = x0 + width
        y = H * rng.uniform(0.05, 0.12)
        paper = np.array([rng.uniform(235, 255)] * 3, np.float32)
        bottom = H * rng.uniform(0.75, 0.95)
        cv2.rectangle(page, (int(x0 - size), int(y - size)), (int(x1 + size), int(bottom)), tuple(float(c) for c in paper), -1)
        ink = np.array([rng.uniform(0, 90)] * 3, np.float32)
        step = size * rng.uniform(1.25, 1.6)

        def centred(words: list[str], f: ImageFont.FreeTypeFont) -> None:
            words = self._covered(info, words)
            while words and f.getlength(" ".join(words)) > width:
                words.pop()
            if words:
                self._line(text, f, words, x0 + (width - f.getlength(" ".join(words))) / 2, y, ink)

        centred([w.upper() for w in (self.tokens.word(rng).strip(".,:;!?") for _ in range(rng.randint(1, 3)))],
                _font(info.path, int(size * rng.uniform(1.0, 1.6))))
        y += step * 1.5
        for _ in range(rng.randint(1, 3)):
            centred(self.tokens.line(rng).upper().split()[:5], font)
            y += step
        y += step * 0.5
        while y + 4 * step < bottom:
            if rng.random() < 0.15:  # a dashed rule
                for x in np.arange(x0, x1, size * 0.6):
                    cv2.line(page, (int(x), int(y + size / 2)), (int(x + size * 0.3), int(y + size / 2)),
                             tuple(float(c) for c in ink), 1)
                y += step
                continue
            name = self._covered(info, [self.tokens.word(rng).upper().strip(".,") for _ in range(rng.randint(1, 3))])
            if rng.random() < 0.3:
                name.append(f"x{rng.randint(1, 9)}")
            price = [f"{rng.uniform(0.5, 300):.2f}"]
            price_x = x1 - font.getlength(price[0])
            while name and x0 + font.getlength(" ".join(name)) > price_x - 2 * font.getlength(" "):
                name.pop()
            if name:
                self._line(text, font, name, x0, y, ink)
            self._line(text, font, price, price_x, y, ink)
            y += step
        total = [rng.choice(("TOTAL", "Total", "TOTAL:", "AMOUNT", "CASH"))]
        amount = [f"{rng.uniform(5, 900):.2f}"]
        self._line(text, font, total, x0, y, ink)
        self._line(text, font, amount, x1 - font.getlength(amount[0]), y, ink)
        y += step * 1.5
        centred(self.tokens.date_or_time(rng).split() + self.tokens.date_or_time(rng).split(), font)

    def _document(self, text: _PageText, rng: random.Random) -> None:
        """A title, then blocks of 1-3 columns of headings and paragraphs, a table at times."""
        page = text.page
        H, W = page.shape[:2]
        families = self.book.families
        body = self.book.variant(rng.choice(families), bold=False, rng=rng)
        head_family = body.family if rng.random() < 0.6 else rng.choice(families)
        head = self.book.variant(head_family, bold=rng.random() < 0.8, rng=rng)
        size = max(MIN_FONT_PX, int(round(W * rng.uniform(0.012, 0.022))))
        spacing = rng.uniform(1.15, 1.6)
        justify = rng.random() < 0.4
        ink = np.array([rng.uniform(0, 60)] * 3, np.float32)
        if rng.random() < 0.15:
            ink = ink + np.array([rng.uniform(0, 60), 0, 0], np.float32)  # blue-black
        accent = ink if rng.random() < 0.7 else _random_colour(rng) * 0.6
        mx, my = W * rng.uniform(0.05, 0.11), H * rng.uniform(0.04, 0.09)
        x0, x1, y, y_end = mx, W - mx, my, H - my
        if rng.random() < 0.35:  # running header: title left, page number right
            small = _font(body.path, max(MIN_FONT_PX, int(size * 0.85)))
            words = self._covered(body, [self.tokens.word(rng).strip(".,") for _ in range(rng.randint(1, 4))])
            if words:
                self._line(text, small, words, x0, y, ink)
            number = str(rng.randint(1, 400))
            self._line(text, small, [number], x1 - small.getlength(number), y, ink)
            y += size * 2
            if rng.random() < 0.5:
                cv2.line(page, (int(x0), int(y - size * 0.6)), (int(x1), int(y - size * 0.6)), tuple(float(c) for c in ink), 1)
        if rng.random() < 0.6:
            y = self._heading(text, head, int(size * rng.uniform(1.5, 2.6)), x0, x1, y, accent, rng,
                              centre=rng.random() < 0.5)
        table_at = rng.random() if rng.random() < 0.3 else None
        n_cols = rng.choice((1, 1, 1, 2, 2, 3))
        gutter = W * rng.uniform(0.03, 0.06)
        while y < y_end - size * 3:
            if table_at is not None and y > my + table_at * (y_end - my) * 0.7:
                y = self._table(text, body, self.book.variant(body.family, True, rng), size, x0, x1, y,
                                min(y_end, y + (y_end - y) * rng.uniform(0.3, 0.6)), ink, rng)
                table_at = None
                continue
            block_end = y_end if rng.random() < 0.7 else y + (y_end - y) * rng.uniform(0.3, 0.7)
            col_w = (x1 - x0 - gutter * (n_cols - 1)) / n_cols
            bottoms = []
            for c in range(n_cols):
                cx0 = x0 + c * (col_w + gutter)
                cy = y
                while cy < block_end - size * spacing:
                    if rng.random() < 0.18:
                        cy = self._heading(text, head, int(size * rng.uniform(1.1, 1.6)), cx0, cx0 + col_w, cy,
                                           accent, rng)
                    new_y = self._paragraph(text, body, size, cx0, cx0 + col_w, cy, block_end, ink, rng, spacing, justify)
                    if new_y == cy:
                        break
                    cy = new_y + size * rng.uniform(0.3, 1.2)
                bottoms.append(cy)
            y = max(bottoms) + size
            if table_at is None and rng.random() < 0.25:
                break
            n_cols = rng.choice((1, 1, 2, 2, 3))

    # -- the page
    def render(self, rng: random.Random) -> tuple[np.ndarray, dict[str, Any]]:
        """(BGR uint8 image, {"width", "height", "rotation", "regions"})."""
        nprng = np.random.default_rng(rng.getrandbits(64))
        long = rng.randint(1000, 1600)
        H, W = long, int(round(long / rng.uniform(1.25, 1.45)))
        paper = np.array([rng.uniform(225, 255) for _ in range(3)], np.float32)
        paper = paper * 0.5 + paper.mean() * 0.5
        page = np.ascontiguousarray(np.broadcast_to(paper, (H, W, 3)), dtype=np.float32)
        if rng.random() < 0.6:
            page += _value_noise(H, W, rng.choice((8, 32, 128)), nprng) * rng.uniform(1, 6)
        text = _PageText(page)
        if rng.random() < 0.15:
            self._receipt(text, rng)
        else:
            self._document(text, rng)
        rotation = rng.choice((90, 180, 270)) if rng.random() < 0.25 else 0
        skew = float(np.clip(rng.gauss(0, 0.8), -3, 3)) if rng.random() < 0.7 else 0.0
        angle = rotation + skew
        rad = math.radians(angle)
        out_w = int(math.ceil(abs(W * math.cos(rad)) + abs(H * math.sin(rad)) - 1e-6))
        out_h = int(math.ceil(abs(W * math.sin(rad)) + abs(H * math.cos(rad)) - 1e-6))
        matrix = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), -angle, 1.0)  # OpenCV turns counter-clockwise
        matrix[0, 2] += (out_w - 1) / 2 - (W - 1) / 2
        matrix[1, 2] += (out_h - 1) / 2 - (H - 1) / 2
        border = paper if rng.random() < 0.8 else np.full(3, rng.uniform(20, 90), np.float32)
        image = cv2.warpAffine(page, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=tuple(float(c) for c in border))
        image = self._scan(image, rng, nprng)
        regions = []
        quads = [_clip_quad(_map_points(matrix, _box_corners(b)), out_w, out_h) for b in text.word_boxes]
        for word, quad in zip(text.words, quads):
            regions.append(_region(quad, word, "word"))
        for line, indexes in text.lines:
            boxes = np.array([text.word_boxes[k] for k in indexes])
            box = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
            regions.append(_region(_clip_quad(_map_points(matrix, _box_corners(box)), out_w, out_h), line, "line"))
        return image, {"width": out_w, "height": out_h, "rotation": rotation, "regions": regions}

    @staticmethod
    def _scan(image: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """Scanner and camera artefacts: uneven light, blur, noise, specks, low resolution."""
        H, W = image.shape[:2]
        if rng.random() < 0.3:
            xs = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
            ys = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
            angle = rng.uniform(0, 2 * math.pi)
            gain = 1 + rng.uniform(0.05, 0.2) * (xs * math.cos(angle) + ys * math.sin(angle))
            image = image * gain[..., None]
        if rng.random() < 0.2:
            f = rng.uniform(0.55, 0.85)
            small = cv2.resize(image, (max(1, int(W * f)), max(1, int(H * f))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.4:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.1))
        if rng.random() < 0.5:
            image = image + nprng.normal(0, rng.uniform(1.5, 8), size=(H, W, 1)).astype(np.float32)
        image = np.clip(image, 0, 255).astype(np.uint8)
        if rng.random() < 0.15:
            specks = nprng.random((H, W)) < rng.uniform(0.0005, 0.004)
            image[specks] = 0 if rng.random() < 0.7 else 255
        return image


# ---------------------------------------------------------------- output


def _is_our_output(path: Path) -> bool:
    """A folder holding only images/ (JPEG files), labels.jsonl and the marker this module writes."""
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if MARKER not in names or not names <= {MARKER, LABELS_FILE, "images"}:
        return False
    try:
        if json.loads((path / MARKER).read_text()).get("generator") != GENERATOR:
            return False
    except (OSError, ValueError, AttributeError):
        return False
    images = path / "images"
    if images.exists() and (images.is_symlink() or not images.is_dir()):
        return False
    return not images.exists() or all(p.is_file() and not p.is_symlink() and p.suffix == ".jpg" for p in images.iterdir())


_worker: SceneSynth | PageSynth | None = None


def _init_worker(style: str, fonts: list[FontInfo], photos: list[str], cjk_share: float = 0.0,
                 cjk_fonts: Sequence[FontInfo] = (), sign_share: float = 0.0) -> None:
    global _worker
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    _worker = SceneSynth(fonts, photos, cjk_share, cjk_fonts, sign_share) if style == "scene" else PageSynth(fonts)


def _image_rng(seed: int, style: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{style}:{index}")


def _render_job(job: tuple[int, str, int]) -> tuple[int, bytes, dict[str, Any]]:
    seed, style, index = job
    rng = _image_rng(seed, style, index)
    image, record = _worker.render(rng)  # type: ignore[union-attr]
    quality = rng.randint(35, 95) if style == "scene" else rng.randint(50, 95)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DatasetError("JPEG encoding failed")
    name = f"images/{index:06d}.jpg"
    return index, buf.tobytes(), {"image": name, **record}


def render_stream(count: int, style: str, fonts: list[FontInfo], photos: Sequence[str | Path] = (), seed: int = 0,
                  workers: int = 0, cjk_share: float = 0.0, cjk_fonts: Sequence[FontInfo] = (),
                  sign_share: float = 0.0) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """Yield (index, JPEG bytes, record) for images 0..count-1 in order, whatever the number of workers."""
    jobs = [(seed, style, i) for i in range(count)]
    workers = workers or os.cpu_count() or 1
    args = (style, fonts, [str(p) for p in photos], cjk_share, list(cjk_fonts), sign_share)
    if workers == 1:
        _init_worker(*args)
        for job in jobs:
            yield _render_job(job)
        return
    # forkserver, not fork: a child forked from a process whose OpenCV thread pool has started can hang in it
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=args) as pool:
        yield from pool.imap(_render_job, jobs, chunksize=4)


def synthesize_scenes(out: str | Path, count: int, seed: int = 0, style: str = "scene",
                      font_dirs: list[str] | None = None, workers: int = 0, progress: bool = True,
                      overwrite: bool = False, photos: str | Path | None = DEFAULT_PHOTOS,
                      backgrounds_cache: str | Path | None = None, cjk_share: float = 0.0,
                      sign_share: float = 0.0) -> int:
    """Render `count` labelled images of `style` ("scene" or "page") into a new folder `out`.

    The folder is written beside `out` under a temporary name and renamed when complete, so a failed run
    leaves nothing that looks like a finished set (and an older output in place).

    Args:
        out: the folder to create: images/*.jpg, labels.jsonl and a marker file (synth.json).
        count: images to render.
        seed: the same seed gives the same images and labels.
        style: "scene" (text in photos) or "page" (document pages).
        font_dirs: folders to take fonts from (default: the system's and the bundled ones).
        workers: processes (0: one per CPU).
        progress: show a progress bar.
        overwrite: replace `out` when it is an earlier output of this function (never anything else).
        photos: scene style: a training set in the labels.jsonl layout whose photos, text painted out, serve as
            backgrounds (default: MSRA-TD500 train in ../shared, skipped when absent); None: only procedural ones.
        backgrounds_cache: where the painted-out photos are cached (default: under ~/.cache/crnn_ocr).
        cjk_share: scene style: the share of text instances written in Chinese, Japanese or Korean
            (`crnn_ocr.detect.cjk`; needs a font that draws Chinese).
        sign_share: scene style: the share of images with one or two signs: one or two words up to about two
            thirds of the image height, letters often spaced wide (shop signs, banners, logos).

    Returns:
        The number of images written.

    Raises:
        ConfigError: unknown style, a negative count, a CJK or sign share outside 0-1 or given for pages.
        DatasetError: `out` exists (without `overwrite`, or is not ours), no fonts (none for CJK text when
            asked for), unusable photos.
    """
    if style not in STYLES:
        raise ConfigError(f"unknown synthetic style {style!r}; choose from {', '.join(STYLES)}")
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}")
    if not 0 <= cjk_share <= 1:
        raise ConfigError(f"the CJK share must be between 0 and 1, got {cjk_share}")
    if cjk_share and style != "scene":
        raise ConfigError("CJK text is rendered in scenes only (--style scene)")
    if not 0 <= sign_share <= 1:
        raise ConfigError(f"the sign share must be between 0 and 1, got {sign_share}")
    if sign_share and style != "scene":
        raise ConfigError("signs are rendered in scenes only (--style scene)")
    out = Path(out)
    protected = [p for p in (photos, backgrounds_cache) if p is not None]
    check_replaceable(out, overwrite, _is_our_output, "a synthetic detection set", protected=protected)
    fonts = discover_fonts(font_dirs)
    if not fonts:
        raise DatasetError("no usable text fonts found")
    cjk_fonts = discover_cjk_fonts(font_dirs) if cjk_share else []
    if cjk_share:
        CJKText(cjk_fonts)  # fails here, with its reason, rather than in every worker
    backgrounds: list[Path] = []
    if style == "scene" and photos is not None:
        if Path(photos).is_dir():
            backgrounds = prepare_backgrounds(photos, backgrounds_cache)
        elif Path(photos) != DEFAULT_PHOTOS:
            raise DatasetError(f"{photos}: no such folder of labelled photos")
        else:
            log.warning("%s not found: scene backgrounds are procedural only", photos)
    from tqdm import tqdm

    staged = staging_path(out)
    discard(staged)
    try:
        (staged / "images").mkdir(parents=True)
        written = 0
        with open(staged / LABELS_FILE, "w", encoding="utf-8") as labels:
            stream = render_stream(count, style, fonts, backgrounds, seed, workers, cjk_share, cjk_fonts, sign_share)
            for _, data, record in tqdm(stream, total=count, disable=not progress, desc=f"synth {style}", unit="img"):
                (staged / record["image"]).write_bytes(data)
                labels.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
        marker = {"generator": GENERATOR, "style": style, "count": written, "seed": seed}
        if cjk_share:
            marker["cjk_share"] = cjk_share
        if sign_share:
            marker["sign_share"] = sign_share
        (staged / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        swap_in(staged, out)
    except BaseException:
        discard(staged)
        raise
    return written
