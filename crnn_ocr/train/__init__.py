"""Training and scoring a recogniser: `train(TrainConfig)` runs or continues a run; `evaluate_source` scores a
recogniser on a dataset (what `ocr eval` prints). Imported lazily: `crnn_ocr.train.allocator` (used by the CLI
before anything else) must not pull in torch.

>>> # from crnn_ocr.train import train
>>> # train(TrainConfig.from_file("data/recipes/history/default.toml"))
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"train": "crnn_ocr.train.loop", "TrainResult": "crnn_ocr.train.loop", "evaluate_source": "crnn_ocr.train.evaluate"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'crnn_ocr.train' has no attribute {name!r}")
