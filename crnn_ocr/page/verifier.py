"""The text / non-text verifier of the page pipeline at run time (torch-free): patches and the ONNX classifier.

A candidate crop becomes an "ink map": made dark-on-light, then ink strength in [0, 1] measured from the
background level, so contrast, brightness and polarity do not matter; it is scaled to the patch height and cut
into patch-wide windows. A crop's score is the mean text probability of its inked windows. The classifier is
trained by `crnn_ocr.dbn` (`ocr dbn train`, `ocr dbn export`); here it only runs.

>>> # verifier = load_verifier("weights/text_verifier.onnx"); verifier([crop1, crop2])  # -> [True, False]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.errors import CheckpointError
from crnn_ocr.image.preprocess import to_gray
from crnn_ocr.recognize.onnx import open_session

# ----- patches: what the classifier sees -----
# A candidate crop becomes an "ink map": made dark-on-light, then ink strength in [0, 1] measured from the
# background level, so contrast, brightness and polarity do not matter; it is scaled to the patch height and
# cut into patch-wide windows. A crop's score is the mean text probability of its inked windows.
PATCH_HEIGHT = 16
PATCH_WIDTH = 64
MAX_WINDOWS = 8
MIN_WINDOW_INK = 0.01  # mean ink a window needs to count as evidence
MIN_CONTRAST = 32.0  # ink strength is measured against at least this many gray levels


def _thickness(mask: np.ndarray) -> float:
    """How thick the regions of a binary mask are: the 90th percentile of their distance to the other side."""
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    values = d[mask]
    return float(np.percentile(values, 90)) if values.size else 0.0


def dark_background(gray: np.ndarray) -> bool:
    """Whether a crop is light ink on a dark ground.

    The two sides of an Otsu split are compared by thickness at a fixed height of 32 pixels: strokes are
    thin, the ground between and around them is wide. This holds for text in a dark box inside a light
    margin too, where "majority" or "border colour" rules pick the box as the ground.
    """
    h = 32
    w = max(1, int(round(gray.shape[1] * h / max(gray.shape[0], 1))))
    small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if gray.shape[0] > h else cv2.INTER_LINEAR)
    t, _ = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = small <= t
    return _thickness(dark) > _thickness(~dark)


def ink_map(crop: np.ndarray) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 0 for background, 1 for full-contrast ink, whatever the polarity.

    Light ink on a dark ground is turned around first (`dark_background`). Ink strength is the distance
    from the ground's median level (the light side of an Otsu split), divided by the distance of the
    darkest 1% of pixels (at least MIN_CONTRAST levels, so flat crops stay faint).
    """
    g = to_gray(crop, clip=True)
    if g.size == 0:
        return np.zeros((1, 1), np.float32)
    f = g.astype(np.float32)
    if dark_background(g):
        f = 255.0 - f
        g = 255 - g
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ground = f[f > t]
    background = float(np.median(ground)) if ground.size else float(np.median(f))
    ink_level = float(np.percentile(f, 1))
    scale = max(background - ink_level, MIN_CONTRAST)
    return np.clip((background - f) / scale, 0.0, 1.0)


def patch_windows(crop: np.ndarray, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                  max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """The patches a crop is scored on: float32 (n, height * width), 1 <= n <= max_windows.

    The crop's ink map is scaled to `height` keeping the aspect ratio; a narrow result is centred and
    padded with background, a wide one cut into evenly spaced windows (overlapping where fewer than needed
    to tile the line).
    """
    return ink_windows(ink_map(crop), height, width, max_windows)


def ink_windows(ink: np.ndarray, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """`patch_windows` of an ink map (float32 (H, W) in [0, 1])."""
    h, w = ink.shape
    new_w = max(1, int(round(w * height / max(h, 1))))
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    scaled = cv2.resize(ink, (new_w, height), interpolation=interp)
    if new_w <= width:
        patch = np.zeros((height, width), np.float32)
        x0 = (width - new_w) // 2
        patch[:, x0:x0 + new_w] = scaled
        return patch.reshape(1, -1)
    n = min(max_windows, int(np.ceil(new_w / width)))
    starts = np.linspace(0, new_w - width, n).round().astype(int)
    return np.stack([scaled[:, s:s + width].reshape(-1) for s in starts])


def score_crops(crops: Sequence[np.ndarray], score_patches: Callable[[np.ndarray], np.ndarray],
                height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH, max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """Probability of text per crop, float64 (N,): the mean of `score_patches` over the crop's inked windows
    (over all its windows when none holds ink). `score_patches`: float32 (n, height * width) -> (n,)."""
    groups = [patch_windows(c, height, width, max_windows) for c in crops]
    if not groups:
        return np.zeros(0)
    probs = np.asarray(score_patches(np.concatenate(groups)), dtype=np.float64).reshape(-1)
    out = np.empty(len(groups))
    start = 0
    for i, g in enumerate(groups):
        p = probs[start:start + len(g)]
        inked = g.mean(1) >= MIN_WINDOW_INK
        out[i] = float(p[inked].mean() if inked.any() else p.mean())
        start += len(g)
    return out


# ----- the exported verifier, run with onnxruntime -----
VERIFIER_FORMAT = "crnn_ocr.verifier.onnx/1"
VERIFIER_INPUT = "patches"
VERIFIER_OUTPUT = "text_probability"


def verifier_metadata(kind: str, threshold: float, height: int, width: int, max_windows: int,
                      info: dict[str, Any] | None = None) -> dict[str, str]:
    """The `metadata_props` of an exported verifier.

    >>> verifier_metadata("dbn", 0.4, 16, 64, 8)["patch_width"]
    '64'
    """
    return {"format": VERIFIER_FORMAT, "kind": kind, "threshold": repr(float(threshold)), "patch_height": str(height),
            "patch_width": str(width), "max_windows": str(max_windows),
            "info": json.dumps(info or {}, ensure_ascii=False, default=str)}


class OnnxTextVerifier:
    """Says which line candidates of a page hold text, from an exported verifier (`ocr dbn export`); no torch.

    A `crnn_ocr.page.TextFilter`: `verifier(crops) -> [keep, ...]`; `scores(crops)` gives the probabilities.
    Patches are made by `patch_windows`, as in training.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        self.session = open_session(self.path, threads)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("format") != VERIFIER_FORMAT:
            raise CheckpointError(f"{self.path}: not a crnn_ocr text verifier (expected format {VERIFIER_FORMAT})")
        try:
            self.threshold = float(meta["threshold"])
            self.height, self.width = int(meta["patch_height"]), int(meta["patch_width"])
            self.max_windows = int(meta["max_windows"])
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{self.path}: verifier metadata incomplete or malformed ({e})") from e
        self.kind = meta.get("kind", "")
        self.input_name = self.session.get_inputs()[0].name

    def patch_scores(self, patches: np.ndarray) -> np.ndarray:
        if len(patches) == 0:
            return np.zeros(0)
        batch = np.ascontiguousarray(patches, dtype=np.float32)
        return self.session.run(None, {self.input_name: batch})[0].astype(np.float64)

    def scores(self, crops) -> np.ndarray:
        """Probability of text per crop, float64 (N,)."""
        return score_crops(crops, self.patch_scores, self.height, self.width, self.max_windows)

    def __call__(self, crops) -> list[bool]:
        return [bool(s >= self.threshold) for s in self.scores(crops)]

    def __repr__(self) -> str:
        return f"OnnxTextVerifier({str(self.path)!r}, kind={self.kind}, threshold={self.threshold:.3f})"


def load_verifier(path: str | Path, threads: int = 1) -> OnnxTextVerifier:
    """An exported verifier (`ocr dbn export`), run with onnxruntime. A `.pt` checkpoint of the trainer is
    loaded by `crnn_ocr.dbn.TextVerifier.load` (torch); `ocr recognize --verifier` takes either."""
    path = Path(path)
    if path.suffix.lower() == ".pt":
        raise CheckpointError(f"{path}: a training checkpoint; load it with crnn_ocr.dbn.TextVerifier.load, "
                              "or export it with `ocr dbn export`")
    return OnnxTextVerifier(path, threads)
