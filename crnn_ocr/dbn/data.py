"""Labelled patches for the text / non-text verifier, made by the project.

Text (label 1): lines and words from the synthetic renderer (`SynthGenerator`, the bundled and system
fonts), and optionally real training crops (folders with `images/` and `labels.tsv`, such as
`../shared/train/*`; never the evaluation sets).

Non-text (label 0): clutter a line finder mistakes for lines, drawn here: rules (solid, dashed, double),
boxes and checkboxes, table grids, logo-like filled shapes, stamps, handwriting-like strokes and signatures
(random Bezier curves), barcodes and QR-like grids, speckle, photo-like textures, and blank paper.
The clutter goes through the renderer's own background, colour and degradation steps, so background, blur,
noise and JPEG statistics are the same for both classes and only the shapes tell them apart.

Real crops are split by a hash of their file name: 80% "train", 10% "val", 10% "test", so a held-out
evaluation never sees a crop used in training.

>>> # patches = make_patches(200, 200, seed=0)   # renders with the installed fonts
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.dbn.verifier import PATCH_HEIGHT, PATCH_WIDTH, random_patch
from crnn_ocr.errors import DatasetError

SPLITS = ("train", "val", "test")
_SPLIT_BUCKETS = {"train": range(0, 8), "val": range(8, 9), "test": range(9, 10)}


@dataclass
class PatchSet:
    """Patches x (N, height * width) float32 in [0, 1], labels y (N,) int64 (1 = text), and each one's source."""

    x: np.ndarray
    y: np.ndarray
    source: list[str] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)  # the uint8 crops, when kept

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.source:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))


# ----------------------------------------------------------------------------------------------------------
# Clutter masks: uint8 (H, W), 255 = ink. Sizes are in "font pixels", like the renderer's text masks.
# ----------------------------------------------------------------------------------------------------------

def _canvas(rng: random.Random, min_aspect: float = 0.6, max_aspect: float = 20.0) -> np.ndarray:
    """An empty mask 18-64 high whose aspect ratio follows text crops': word-like (1-6) or line-like (6-20),
    clipped to [min_aspect, max_aspect], so the width of a crop never tells text from clutter."""
    h = rng.randint(18, 64)
    aspect = math.exp(rng.uniform(math.log(0.8), math.log(6))) if rng.random() < 0.5 else rng.uniform(6, 20)
    w = max(8, int(h * min(max(aspect, min_aspect), max_aspect)))
    return np.zeros((h, w), np.uint8)


def _rule(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 2.0, 25.0)
    h, w = m.shape
    n = rng.choice((1, 1, 1, 2, 2, 3))
    thick = rng.randint(1, max(2, h // 8))
    ys = sorted(rng.sample(range(h // 5, h - h // 5), min(n, max(1, h - 2 * (h // 5)))))
    style = rng.random()
    for y in ys:
        if style < 0.55:
            cv2.line(m, (rng.randint(0, w // 8), y), (w - 1 - rng.randint(0, w // 8), y), 255, thick, cv2.LINE_AA)
        elif style < 0.85:  # dashed
            dash, gap = rng.randint(4, 20), rng.randint(2, 10)
            for x in range(rng.randint(0, dash), w, dash + gap):
                cv2.line(m, (x, y), (min(w - 1, x + dash), y), 255, thick, cv2.LINE_AA)
        else:  # wavy
            xs = np.arange(w)
            amp, period = rng.uniform(1, max(1.5, h / 6)), rng.uniform(8, 40)
            pts = np.stack([xs, y + amp * np.sin(2 * np.pi * xs / period)], 1).round().astype(np.int32)
            cv2.polylines(m, [pts], False, 255, thick, cv2.LINE_AA)
    if rng.random() < 0.25:  # a vertical rule too
        x = rng.randint(0, w - 1)
        cv2.line(m, (x, 0), (x, h - 1), 255, thick, cv2.LINE_AA)
    if rng.random() < 0.2:
        m = np.ascontiguousarray(m.T)  # a vertical rule candidate
    return m


def _box(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 0.6, 10.0)
    h, w = m.shape
    thick = rng.randint(1, max(2, h // 10))
    if rng.random() < 0.35:  # a row of checkboxes or cells
        n = rng.randint(2, 8)
        size = min(h - 4, max(6, w // (n + 1)))
        step = max(size + 2, w // n)
        for i in range(n):
            x0 = 2 + i * step
            if x0 + size >= w:
                break
            y0 = (h - size) // 2
            cv2.rectangle(m, (x0, y0), (x0 + size, y0 + size), 255, max(1, thick // 2), cv2.LINE_AA)
            if rng.random() < 0.3:  # ticked
                cv2.line(m, (x0 + 2, y0 + size // 2), (x0 + size // 2, y0 + size - 2), 255, max(1, thick // 2), cv2.LINE_AA)
                cv2.line(m, (x0 + size // 2, y0 + size - 2), (x0 + size - 1, y0 + 1), 255, max(1, thick // 2), cv2.LINE_AA)
    else:
        for _ in range(rng.choice((1, 1, 2))):
            x0, y0 = rng.randint(0, w // 6), rng.randint(0, h // 6)
            x1, y1 = w - 1 - rng.randint(0, w // 6), h - 1 - rng.randint(0, h // 6)
            cv2.rectangle(m, (x0, y0), (x1, y1), 255, thick, cv2.LINE_AA)
    return m


def _table(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 1.0, 12.0)
    h, w = m.shape
    h2 = h * rng.choice((1, 2, 3))
    m = np.zeros((h2, w), np.uint8)
    thick = rng.randint(1, 2)
    rows, cols = rng.randint(1, 4), rng.randint(2, 10)
    for r in range(rows + 1):
        y = min(h2 - 1, int(r * (h2 - 1) / rows))
        cv2.line(m, (0, y), (w - 1, y), 255, thick)
    xs = sorted(rng.sample(range(1, w - 1), min(cols - 1, w - 2))) if w > 3 else []
    for x in [0, *xs, w - 1]:
        cv2.line(m, (x, 0), (x, h2 - 1), 255, thick)
    return m


def _star(cx: float, cy: float, r: float, points: int, inner: float, turn: float) -> np.ndarray:
    angles = np.arange(2 * points) * np.pi / points + turn
    radius = np.where(np.arange(2 * points) % 2 == 0, r, r * inner)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1).round().astype(np.int32)


def _logo(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 0.6, 12.0)
    h, w = m.shape
    if rng.random() < 0.3:  # a solid block with shapes cut out (an inverted logo)
        m[:] = 255
        color = 0
    else:
        color = 255
    for _ in range(rng.randint(1, 3) * max(1, round(w / h / 2))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.2, 0.6) * h
        kind = rng.random()
        if kind < 0.3:
            cv2.ellipse(m, (int(cx), int(cy)), (int(r * rng.uniform(0.6, 1.8)), int(r)), rng.uniform(0, 180), 0, 360,
                        color, -1 if rng.random() < 0.7 else max(2, int(r / 4)), cv2.LINE_AA)
        elif kind < 0.55:
            cv2.fillPoly(m, [_star(cx, cy, r, rng.randint(4, 8), rng.uniform(0.35, 0.7), rng.uniform(0, np.pi))], color,
                         cv2.LINE_AA)
        elif kind < 0.8:
            n = rng.randint(3, 7)
            pts = np.array([[cx + r * math.cos(a), cy + r * math.sin(a)]
                            for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))]).round().astype(np.int32)
            cv2.fillPoly(m, [pts], color, cv2.LINE_AA)
        else:  # swoosh: a thick arc
            cv2.ellipse(m, (int(cx), int(cy)), (int(r * 2), int(r)), rng.uniform(-30, 30), rng.uniform(0, 90),
                        rng.uniform(180, 300), color, max(2, int(r / 3)), cv2.LINE_AA)
    return m


def _bezier(p: np.ndarray, n: int = 24) -> np.ndarray:
    """Points on the cubic Bezier curve with control points p (4, 2)."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3]


def _scribble(rng: random.Random) -> np.ndarray:
    """Handwriting-like strokes and signatures: chains of random cubic Bezier curves with loops."""
    m = _canvas(rng, 1.0, 10.0)
    h, w = m.shape
    thick = rng.randint(1, max(1, h // 14))
    for _ in range(rng.choice((1, 1, 2, 3))):
        x = rng.uniform(0, w * 0.3)
        y = rng.uniform(0.3, 0.7) * h
        pts = [np.array([x, y])]
        while x < w * rng.uniform(0.7, 1.0):
            step = rng.uniform(0.3, 1.2) * h
            nxt = np.array([x + step, rng.uniform(0.15, 0.85) * h])
            c1 = pts[-1] + np.array([rng.uniform(-0.6, 1.0) * step, rng.uniform(-0.7, 0.7) * h])
            c2 = nxt + np.array([rng.uniform(-1.0, 0.6) * step, rng.uniform(-0.7, 0.7) * h])
            curve = _bezier(np.stack([pts[-1], c1, c2, nxt]))
            cv2.polylines(m, [curve.round().astype(np.int32)], False, 255, thick, cv2.LINE_AA)
            pts.append(nxt)
            x = nxt[0]
    return m


def _stamp(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 0.8, 4.0)
    h, w = m.shape
    big = np.zeros((h * 2, w * 2), np.uint8)
    cx, cy = w, h
    rx, ry = int(w * rng.uniform(0.6, 0.95)), int(h * rng.uniform(0.6, 0.95))
    thick = max(2, h // 10)
    if rng.random() < 0.6:
        cv2.ellipse(big, (cx, cy), (rx, ry), 0, 0, 360, 255, thick, cv2.LINE_AA)
        if rng.random() < 0.6:
            cv2.ellipse(big, (cx, cy), (int(rx * 0.75), int(ry * 0.75)), 0, 0, 360, 255, max(1, thick // 2), cv2.LINE_AA)
    else:
        cv2.rectangle(big, (cx - rx, cy - ry), (cx + rx, cy + ry), 255, thick, cv2.LINE_AA)
    for _ in range(rng.randint(0, 12)):  # worn marks inside the ring
        px, py = int(cx + rng.uniform(-0.5, 0.5) * rx), int(cy + rng.uniform(-0.5, 0.5) * ry)
        cv2.circle(big, (px, py), rng.randint(1, max(1, h // 8)), 255, -1, cv2.LINE_AA)
    if rng.random() < 0.5:
        cv2.fillPoly(big, [_star(cx, cy, min(rx, ry) * 0.3, 5, 0.45, -np.pi / 2)], 255, cv2.LINE_AA)
    # Stamps are inked unevenly: erase random blotches.
    wear = np.zeros_like(big)
    for _ in range(rng.randint(0, 6)):
        cv2.circle(wear, (rng.randint(0, 2 * w), rng.randint(0, 2 * h)), rng.randint(2, max(3, h // 3)), 255, -1)
    big[wear > 0] = 0
    x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)  # often only part of a stamp is a candidate
    return np.ascontiguousarray(big[y0:y0 + h + h // 2, x0:x0 + w + w // 2])


def _barcode(rng: random.Random) -> np.ndarray:
    if rng.random() < 0.7:
        m = _canvas(rng, 1.5, 8.0)
        h, w = m.shape
        x = rng.randint(0, 4)
        unit = rng.randint(1, 3)
        while x < w - 2:
            bar = unit * rng.randint(1, 4)
            m[:, x:x + bar] = 255
            x += bar + unit * rng.randint(1, 4)
    else:  # QR-like module grid
        cells = rng.randint(10, 25)
        unit = rng.randint(2, 4)
        grid = (np.random.default_rng(rng.getrandbits(32)).random((cells, cells)) < 0.5).astype(np.uint8) * 255
        m = cv2.resize(grid, (cells * unit, cells * unit), interpolation=cv2.INTER_NEAREST)
    return m


def _speckle(rng: random.Random) -> np.ndarray:
    m = _canvas(rng, 0.6, 14.0)
    h, w = m.shape
    nprng = np.random.default_rng(rng.getrandbits(32))
    n = int(h * w * rng.uniform(0.002, 0.03))
    xs, ys = nprng.integers(0, w, n), nprng.integers(0, h, n)
    radii = nprng.integers(0, max(1, h // 12) + 1, n)
    for x, y, r in zip(xs, ys, radii):
        cv2.circle(m, (int(x), int(y)), int(r), 255, -1)
    if rng.random() < 0.4:  # a smudge
        blob = np.zeros_like(m, np.float32)
        cv2.ellipse(blob, (rng.randint(0, w), rng.randint(0, h)), (rng.randint(3, max(4, w // 3)), rng.randint(2, max(3, h // 3))),
                    rng.uniform(0, 180), 0, 360, 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), max(1.0, h / 6)) * rng.uniform(80, 200)
        m = np.maximum(m, blob.clip(0, 255).astype(np.uint8))
    return m


def _texture(rng: random.Random) -> np.ndarray:
    """Photo-like texture: multi-scale smooth noise, stripes, checks or halftone dots (grey-level ink)."""
    m = _canvas(rng, 0.6, 10.0)
    h, w = m.shape
    nprng = np.random.default_rng(rng.getrandbits(32))
    kind = rng.random()
    if kind < 0.5:
        f = np.zeros((h, w), np.float32)
        for octave in range(rng.randint(1, 4)):
            s = max(1, int(rng.choice((2, 4, 8, 16)) * 2 ** -octave))
            small = nprng.normal(0, 1, (h // s + 2, w // s + 2)).astype(np.float32)
            f += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 0.6 ** octave
        f = (f - f.min()) / max(float(np.ptp(f)), 1e-6)
        if rng.random() < 0.5:
            f = (f > rng.uniform(0.4, 0.7)).astype(np.float32)  # blotches
    elif kind < 0.75:
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        a, period = rng.uniform(0, np.pi), rng.uniform(3, 16)
        f = 0.5 + 0.5 * np.sin((xs * np.cos(a) + ys * np.sin(a)) * 2 * np.pi / period)
        if rng.random() < 0.4:
            f = f * (0.5 + 0.5 * np.sin((xs * np.sin(a) - ys * np.cos(a)) * 2 * np.pi / period))
    else:  # halftone dots of varying size
        step = rng.randint(3, 7)
        f = np.zeros((h, w), np.float32)
        ramp = nprng.random() * 0.5
        for y in range(step // 2, h, step):
            for x in range(step // 2, w, step):
                r = step * 0.5 * (ramp + (1 - ramp) * x / w)
                cv2.circle(f, (x, y), max(0, int(round(r))), 1.0, -1)
    return (f * 255 * rng.uniform(0.5, 1.0)).clip(0, 255).astype(np.uint8)


def _blank(rng: random.Random) -> np.ndarray:
    return _canvas(rng, 0.6, 14.0)


CLUTTER: dict[str, Callable[[random.Random], np.ndarray]] = {
    "rule": _rule, "box": _box, "table": _table, "logo": _logo, "scribble": _scribble, "stamp": _stamp,
    "barcode": _barcode, "speckle": _speckle, "texture": _texture, "blank": _blank,
}
# Shares of the kinds (blank paper and speckle matter most to a line finder's false candidates).
CLUTTER_WEIGHTS = {"rule": 1.0, "box": 1.0, "table": 0.7, "logo": 1.2, "scribble": 1.3, "stamp": 1.0, "barcode": 0.6,
                   "speckle": 1.2, "texture": 1.0, "blank": 0.6}


class ClutterRenderer:
    """Draws non-text crops with the text renderer's backgrounds, colours and degradations."""

    def __init__(self, renderer, kinds: Sequence[str] | None = None):
        self.renderer = renderer
        self.kinds = list(kinds or CLUTTER)
        unknown = [k for k in self.kinds if k not in CLUTTER]
        if unknown:
            raise DatasetError(f"unknown clutter kinds: {', '.join(unknown)}")
        self.weights = [CLUTTER_WEIGHTS[k] for k in self.kinds]

    def render(self, rng: random.Random, kind: str | None = None) -> tuple[np.ndarray, str]:
        kind = kind or rng.choices(self.kinds, self.weights)[0]
        mask = CLUTTER[kind](rng)
        nprng = np.random.default_rng(rng.getrandbits(32))
        r = self.renderer
        # The renderer's private stages, so both classes share background, contrast and degradation statistics.
        image = r._compose(mask, rng, nprng)
        if image.shape[0] > r.max_height:
            width = max(1, int(image.shape[1] * r.max_height / image.shape[0]))
            image = cv2.resize(image, (width, r.max_height), interpolation=cv2.INTER_AREA)
        image = r._degrade(image, rng, nprng)
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), kind


# ----------------------------------------------------------------------------------------------------------
# Real crops
# ----------------------------------------------------------------------------------------------------------

def split_of(name: str) -> str:
    """Which split ("train", "val", "test") a real crop belongs to, from a hash of its file name."""
    bucket = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % 10
    return next(s for s, b in _SPLIT_BUCKETS.items() if bucket in b)


def real_crop_files(folders: Sequence[str | Path], split: str) -> list[Path]:
    """Image files of the labelled crop folders (`labels.tsv` lines) that fall in `split`, in a fixed order."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    files = []
    for folder in folders:
        folder = Path(folder)
        if "eval" in folder.resolve().parts:
            raise DatasetError(f"{folder}: refusing to train on an evaluation set")
        labels = folder / "labels.tsv"
        if not labels.is_file():
            raise DatasetError(f"{folder}: no labels.tsv (expected a folder of labelled crops)")
        for line in labels.read_text(encoding="utf-8-sig").splitlines():
            rel = line.split("\t", 1)[0].strip()
            if rel and split_of(f"{folder.name}/{rel}") == split:
                files.append(folder / rel)
    return files


def default_real_folders() -> list[Path]:
    """The real training crop folders of a checkout (`../shared/train/*`), if present."""
    root = Path(__file__).resolve().parents[3] / "shared" / "train"
    return sorted(p for p in root.iterdir() if (p / "labels.tsv").is_file()) if root.is_dir() else []


# ----------------------------------------------------------------------------------------------------------
# Patch sets
# ----------------------------------------------------------------------------------------------------------

def make_patches(n_text: int, n_clutter: int, seed: int = 0, real_folders: Sequence[str | Path] = (),
                 real_share: float = 0.5, split: str = "train", font_dirs: Sequence[str | Path] | None = None,
                 height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH, max_pad: float = 0.3,
                 fonts=None, keep_crops: bool = False) -> PatchSet:
    """`n_text` text patches and `n_clutter` non-text patches, shuffled; deterministic for a seed.

    A share `real_share` of the text comes from real crops of `real_folders` (in `split`) when given, the
    rest from the renderer. Each crop gives one patch: a random inked window, after a random margin of up to
    `max_pad` crop heights (the page pipeline's crops carry a margin). `keep_crops` keeps the crops, with
    that margin, for scoring whole crops.
    """
    from crnn_ocr.datasets.synth import SynthGenerator, discover_fonts
    from crnn_ocr.image.io import read_image

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    fonts = fonts if fonts is not None else discover_fonts(list(font_dirs) if font_dirs else None)
    if not fonts:
        raise DatasetError("no usable fonts to render text with")
    gen = SynthGenerator(fonts, line_share=0.4, max_height=64)
    clutter = ClutterRenderer(gen.renderer)
    real_files = real_crop_files(real_folders, split) if real_folders else []
    n_real = min(len(real_files), int(round(n_text * real_share))) if real_files else 0
    xs, sources, crops = [], [], []

    def add(crop: np.ndarray, source: str) -> None:
        pad = rng.uniform(0, max_pad)
        xs.append(random_patch(crop, nprng, height, width, pad=pad))
        sources.append(source)
        if keep_crops:
            crops.append(pad_crop(crop, pad))

    for path in rng.sample(real_files, n_real):
        try:
            add(read_image(path), f"real:{path.parent.parent.name}")
        except Exception:  # noqa: BLE001 - a corrupt crop is skipped, not given a label
            continue
    for _ in range(n_text - n_real):
        image, _text = gen.sample(rng)
        add(image, "synth")
    n_pos = len(xs)
    for _ in range(n_clutter):
        image, kind = clutter.render(rng)
        add(image, kind)
    x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, height * width), np.float32)
    y = np.zeros(len(xs), np.int64)
    y[:n_pos] = 1
    order = nprng.permutation(len(y))
    return PatchSet(x[order], y[order], [sources[i] for i in order], [crops[i] for i in order] if keep_crops else [])


def pad_crop(crop: np.ndarray, pad: float) -> np.ndarray:
    """A gray crop with `pad` crop heights of margin in its border colour (as the page pipeline cuts lines)."""
    from crnn_ocr.image.preprocess import to_gray

    g = to_gray(crop, clip=True)
    m = int(round(pad * g.shape[0]))
    if m <= 0:
        return g
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    return cv2.copyMakeBorder(g, m, m, m, m, cv2.BORDER_CONSTANT, value=int(np.median(border)))
