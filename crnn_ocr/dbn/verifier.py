"""Text / non-text verifier for line candidates: a small classifier on fixed-size ink patches.

A candidate crop (uint8 gray or RGB, any size) becomes an "ink map": its polarity made dark-on-light (the
majority of pixels is background), then ink strength in [0, 1] measured from the background level, so
contrast, brightness and polarity do not matter. The ink map is scaled to the patch height keeping its
aspect ratio. A crop no wider than the patch is centred on an empty patch; a wider one (a text line) is cut
into up to `max_windows` evenly spaced patch-wide windows. The classifier scores every window that holds
ink; the crop's score is their mean probability of text.

`TextVerifier` is a `crnn_ocr.page.TextFilter`: `verifier(crops) -> [keep, ...]`.

>>> # from crnn_ocr.page import find_lines
>>> # lines = find_lines(page, text_filter=TextVerifier.load("weights/text_verifier.pt"))
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.errors import CheckpointError, ConfigError

FORMAT = "crnn_ocr.verifier/1"
PATCH_HEIGHT = 16
PATCH_WIDTH = 64
MAX_WINDOWS = 8
MIN_WINDOW_INK = 0.01  # mean ink a window needs to count as evidence
MIN_CONTRAST = 32.0  # ink strength is measured against at least this many gray levels


def to_gray(crop: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) -> uint8 (H, W)."""
    crop = np.asarray(crop)
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[..., 0]
    if crop.ndim == 3:
        code = cv2.COLOR_RGBA2GRAY if crop.shape[2] == 4 else cv2.COLOR_RGB2GRAY
        crop = cv2.cvtColor(np.ascontiguousarray(crop), code)
    if crop.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {crop.shape}")
    if crop.dtype != np.uint8:
        crop = np.clip(crop, 0, 255).astype(np.uint8)
    return crop


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
    g = to_gray(crop)
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


def random_patch(crop: np.ndarray, rng: np.random.Generator, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                 pad: float = 0.0) -> np.ndarray:
    """One training patch from a crop: a random inked window of it (float32 (height * width,)).

    `pad` adds that many crop heights of background around it, as the page pipeline's crops carry a
    margin around the text.
    """
    ink = ink_map(crop)
    if pad > 0:
        m = int(round(pad * ink.shape[0]))
        ink = cv2.copyMakeBorder(ink, m, m, m, m, cv2.BORDER_CONSTANT, value=0.0)
    windows = ink_windows(ink, height, width, max_windows=1 + ink.shape[1] * height // (max(ink.shape[0], 1) * width))
    inked = np.flatnonzero(windows.mean(1) >= MIN_WINDOW_INK)
    pick = rng.choice(inked) if len(inked) else rng.integers(len(windows))
    return windows[pick]


def _build_model(kind: str, config: dict[str, Any]):
    from crnn_ocr.dbn.baselines import MLP, Perceptron
    from crnn_ocr.dbn.dbn import DBN

    builders = {"dbn": DBN.from_config, "mlp": MLP.from_config, "perceptron": Perceptron.from_config}
    if kind not in builders:
        raise CheckpointError(f"unknown verifier model kind {kind!r}; expected one of {', '.join(builders)}")
    return builders[kind](config)


MODEL_KINDS = ("dbn", "mlp", "perceptron")


class TextVerifier:
    """Says which line candidates hold text. A `crnn_ocr.page.TextFilter`.

    Args:
        model: a classifier (B, height * width) -> logits (B, 2), class 1 = text (DBN, MLP or Perceptron).
        kind: "dbn", "mlp" or "perceptron" (how to rebuild `model` from its config when loading).
        threshold: crops scoring at least this are kept.
        height, width, max_windows: patch geometry (see `patch_windows`).
        info: free-form facts about training (data, scores), saved with the model.
    """

    def __init__(self, model, kind: str, threshold: float = 0.5, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                 max_windows: int = MAX_WINDOWS, info: dict[str, Any] | None = None):
        if kind not in MODEL_KINDS:
            raise ConfigError(f"unknown verifier model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        if height < 4 or width < 4 or max_windows < 1:
            raise ConfigError("patch height and width must be >= 4 and max_windows >= 1")
        self.model, self.kind, self.threshold = model.eval(), kind, float(threshold)
        self.height, self.width, self.max_windows = int(height), int(width), int(max_windows)
        self.info = dict(info or {})

    def patch_scores(self, patches: np.ndarray) -> np.ndarray:
        """Probability of text of each patch row (n, height * width) -> (n,) float64."""
        import torch

        if len(patches) == 0:
            return np.zeros(0)
        with torch.no_grad():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32)))
            return torch.softmax(logits.double(), 1)[:, 1].numpy()

    def scores(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability of text per crop, float64 (N,): the mean over the crop's inked windows."""
        groups = [patch_windows(c, self.height, self.width, self.max_windows) for c in crops]
        if not groups:
            return np.zeros(0)
        probs = self.patch_scores(np.concatenate(groups))
        out = np.empty(len(groups))
        start = 0
        for i, g in enumerate(groups):
            p = probs[start:start + len(g)]
            inked = g.mean(1) >= MIN_WINDOW_INK
            out[i] = float(p[inked].mean() if inked.any() else p.mean())
            start += len(g)
        return out

    def __call__(self, crops: Sequence[np.ndarray]) -> list[bool]:
        """Keep flags, one per crop (the `TextFilter` protocol)."""
        return [bool(s >= self.threshold) for s in self.scores(crops)]

    # ----- files -----
    def to_dict(self) -> dict[str, Any]:
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return {"format": FORMAT, "kind": self.kind, "config": self.model.config(), "state_dict": state,
                "threshold": self.threshold,
                "patch": {"height": self.height, "width": self.width, "max_windows": self.max_windows},
                "info": self.info}

    def save(self, path: str | Path) -> None:
        """Write atomically, in a file `torch.load(path, weights_only=True)` reads."""
        from crnn_ocr.models.checkpoint import atomic_torch_save

        atomic_torch_save(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: Any, name: str = "verifier") -> TextVerifier:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{name}: not a crnn_ocr text verifier (expected format {FORMAT})")
        missing = [k for k in ("kind", "config", "state_dict", "patch") if k not in data]
        if missing:
            raise CheckpointError(f"{name}: verifier lacks {', '.join(missing)}")
        try:
            model = _build_model(data["kind"], data["config"])
            model.load_state_dict(data["state_dict"])
            patch = data["patch"]
            return cls(model, data["kind"], float(data.get("threshold", 0.5)), int(patch["height"]), int(patch["width"]),
                       int(patch.get("max_windows", MAX_WINDOWS)), data.get("info") or {})
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as e:
            raise CheckpointError(f"{name}: broken verifier ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e

    @classmethod
    def load(cls, path: str | Path) -> TextVerifier:
        """Load a saved verifier without running code from the file (weights_only=True)."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such verifier file")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(f"{path}: refused: holds objects that could run code, or is not a verifier".split("\n")[0]) from e
        except Exception as e:  # noqa: BLE001 - a foreign file can fail anywhere in the unpickler
            raise CheckpointError(f"{path}: not a readable verifier ({type(e).__name__})") from e
        return cls.from_dict(data, str(path))


def default_verifier_path(weights_dir: str | Path | None = None) -> Path | None:
    """The shipped verifier: the first `*verifier*.pt` (by name) in `weights_dir`, or by default in the
    installed package's weights or a checkout's `weights/` (`crnn_ocr.defaults.weights_dirs`); None if none."""
    from crnn_ocr.defaults import weights_dirs

    folders = [Path(weights_dir)] if weights_dir is not None else weights_dirs()
    for folder in folders:
        found = sorted(folder.glob("*verifier*.pt")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def load_default_verifier(weights_dir: str | Path | None = None) -> TextVerifier | None:
    """The shipped verifier if there is one (for the page pipeline's filter stage), else None."""
    path = default_verifier_path(weights_dir)
    return TextVerifier.load(path) if path is not None else None
