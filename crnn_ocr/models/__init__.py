"""Named CRNN architectures. `create_model(cfg, num_classes)` builds one; `available()` lists them."""

from __future__ import annotations

from crnn_ocr.models import crnn as _crnn  # noqa: F401  (registers the built-in architectures)
from crnn_ocr.models.base import RecognitionModel
from crnn_ocr.models.registry import available, create_model, register

__all__ = ["RecognitionModel", "available", "create_model", "register"]
