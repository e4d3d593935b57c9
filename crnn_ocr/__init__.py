"""crnn_ocr: read the text in images and PDFs offline, train recognisers on a CPU, ship one ONNX file.

>>> import crnn_ocr
>>> reader = crnn_ocr.load()          # the shipped models, the defaults of `ocr recognize`
>>> # reader.read("receipt.jpg").text
"""

from __future__ import annotations

import importlib
from typing import Any

from crnn_ocr.errors import OcrError

__version__ = "0.1.0"

# loaded on first use, so `import crnn_ocr` (and `ocr --help`) stays light
_LAZY = {"load": "crnn_ocr.reader", "Reader": "crnn_ocr.reader", "Document": "crnn_ocr.reader",
         "Limits": "crnn_ocr.page.limits",
         "Vocab": "crnn_ocr.text.vocab", "Prediction": "crnn_ocr.text.vocab"}
__all__ = ["Document", "Limits", "OcrError", "Prediction", "Reader", "Vocab", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crnn_ocr' has no attribute {name!r}")
