"""A registry of architecture factories; unknown or duplicate names raise ArchitectureError."""

from __future__ import annotations

from collections.abc import Callable

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ArchitectureError
from crnn_ocr.models.base import RecognitionModel
from crnn_ocr.registry import Registry

ModelFactory = Callable[[ModelConfig, int], RecognitionModel]
_REGISTRY: Registry[ModelFactory] = Registry("architecture", ArchitectureError)


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `factory(cfg, num_classes) -> RecognitionModel` (a class or a function) under `name`."""
    return _REGISTRY.register(name)


def available() -> list[str]:
    return _REGISTRY.names()


def create_model(cfg: ModelConfig, num_classes: int) -> RecognitionModel:
    """Build the architecture `cfg.arch` with `num_classes` outputs (vocabulary size + 1 for the blank)."""
    model = _REGISTRY.get(cfg.arch)(cfg, num_classes)
    if not isinstance(model, RecognitionModel):
        raise ArchitectureError(f"architecture {cfg.arch!r} built a {type(model).__name__}, not a "
                                "crnn_ocr.models.RecognitionModel (see crnn_ocr/models/base.py)")
    return model
