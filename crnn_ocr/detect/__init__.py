"""Whole-image text detection: a DB (Differentiable Binarization) detector that trains on a CPU and ships as ONNX.

Torch-free (import freely): `config`, `targets`, `postprocess`, `runtime` (`OnnxDetector`), `evaluate`.
Torch: `nets` (registry, checkpoints), `data`, `train` (`train_detector`), `export` (`export_detector`).
The names below load their module on first use, so `import crnn_ocr.detect` never imports torch.

>>> # from crnn_ocr.detect import OnnxDetector
>>> # OnnxDetector("detector.onnx", threads=1).detect(rgb)["word"][0].quad
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DetectorConfig": "crnn_ocr.detect.config",
    "DetectTrainConfig": "crnn_ocr.detect.config",
    "SceneSource": "crnn_ocr.detect.config",
    "Detection": "crnn_ocr.detect.postprocess",
    "OnnxDetector": "crnn_ocr.detect.runtime",
    "evaluate_detector": "crnn_ocr.detect.evaluate",
    "create_detector": "crnn_ocr.detect.nets",
    "load_detector": "crnn_ocr.detect.nets",
    "train_detector": "crnn_ocr.detect.train",
    "export_detector": "crnn_ocr.detect.export",
    "quantize_detector": "crnn_ocr.detect.export",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'crnn_ocr.detect' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
