"""A registry of architecture factories; unknown or duplicate names raise ArchitectureError."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ArchitectureError

ModelFactory = Callable[[ModelConfig, int], nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `factory(cfg, num_classes) -> nn.Module` under `name`."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ArchitectureError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available() -> list[str]:
    return sorted(_REGISTRY)


def create_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Build the architecture `cfg.arch` with `num_classes` outputs (vocabulary size + 1 for the blank)."""
    try:
        factory = _REGISTRY[cfg.arch]
    except KeyError:
        raise ArchitectureError(f"unknown architecture {cfg.arch!r}; known: {', '.join(available())}") from None
    return factory(cfg, num_classes)
