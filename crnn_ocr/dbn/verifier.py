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
from crnn_ocr.page.verifier import (  # noqa: F401  - the patch functions are re-exported: crnn_ocr.dbn's API
    MAX_WINDOWS,
    MIN_WINDOW_INK,
    PATCH_HEIGHT,
    PATCH_WIDTH,
    dark_background,
    ink_map,
    ink_windows,
    patch_windows,
    score_crops,
)

FORMAT = "crnn_ocr.verifier/1"


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
        return score_crops(crops, self.patch_scores, self.height, self.width, self.max_windows)

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

    def export_onnx(self, path: str | Path, opset: int = 17) -> Path:
        """Write the classifier as ONNX for `crnn_ocr.runtime.OnnxTextVerifier` (no torch needed to run it):
        input `patches` (N, height * width) float32, output `text_probability` (N,), and the threshold and
        patch geometry in `metadata_props`."""
        import warnings

        import onnx
        import torch

        from crnn_ocr.files import atomic_path
        from crnn_ocr.page.verifier import VERIFIER_INPUT, VERIFIER_OUTPUT, verifier_metadata

        class TextProbability(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, patches):
                return torch.softmax(self.model(patches), 1)[:, 1]

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        example = torch.zeros(3, self.height * self.width)
        with atomic_path(path) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(TextProbability(self.model).eval(), (example,), str(tmp), dynamo=False,
                                  opset_version=opset, input_names=[VERIFIER_INPUT], output_names=[VERIFIER_OUTPUT],
                                  dynamic_axes={VERIFIER_INPUT: {0: "n"}, VERIFIER_OUTPUT: {0: "n"}})
            proto = onnx.load(str(tmp))
            del proto.metadata_props[:]
            for key, value in verifier_metadata(self.kind, self.threshold, self.height, self.width,
                                                self.max_windows, self.info).items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            proto.producer_name = "crnn_ocr"
            onnx.checker.check_model(proto)
            onnx.save(proto, str(tmp))
        return path

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


def default_verifier_path(weights_dir: str | Path | None = None, suffix: str = ".pt") -> Path | None:
    """The shipped verifier: the first `*verifier*<suffix>` (by name) in `weights_dir`, or by default in the
    installed package's weights or a checkout's `weights/` (`crnn_ocr.defaults.weights_dirs`); None if none."""
    from crnn_ocr.defaults import find_verifier

    return find_verifier(suffix, weights_dir)


def load_default_verifier(weights_dir: str | Path | None = None) -> TextVerifier | None:
    """The shipped verifier if there is one (for the page pipeline's filter stage), else None."""
    path = default_verifier_path(weights_dir)
    return TextVerifier.load(path) if path is not None else None
