"""A registry of architecture factories; unknown or duplicate names raise ArchitectureError."""

from __future__ import annotations

from collections.abc import Callable

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ArchitectureError
from crnn_ocr.models.base import RecognitionModel

ModelFactory = Callable[[ModelConfig, int], RecognitionModel]
_REGISTRY: dict[str, ModelFactory] = {}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `factory(cfg, num_classes) -> RecognitionModel` (a class or a function) under `name`."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ArchitectureError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available() -> list[str]:
    return sorted(_REGISTRY)


def create_model(cfg: ModelConfig, num_classes: int) -> RecognitionModel:
    """Build the architecture `cfg.arch` with `num_classes` outputs (vocabulary size + 1 for the blank)."""
    try:
        factory = _REGISTRY[cfg.arch]
    except KeyError:
        raise ArchitectureError(f"unknown architecture {cfg.arch!r}; known: {', '.join(available())}") from None
    model = factory(cfg, num_classes)
    if not isinstance(model, RecognitionModel):
        raise ArchitectureError(f"architecture {cfg.arch!r} built a {type(model).__name__}, not a "
                                "crnn_ocr.models.RecognitionModel (see crnn_ocr/models/base.py)")
    return model
