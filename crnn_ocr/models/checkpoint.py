"""Checkpoint files: one `.pt` of plain types and tensors, loadable with `torch.load(weights_only=True)`."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import CheckpointError, ConfigError, VocabError
from crnn_ocr.files import atomic_path
from crnn_ocr.models.registry import create_model
from crnn_ocr.text.vocab import Vocab

FORMAT = "crnn_ocr.checkpoint/1"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_checkpoint(
    path: str | Path, model: nn.Module, cfg: ModelConfig, vocab: Vocab, train_state: dict[str, Any] | None = None
) -> None:
    """Write atomically (temporary file in the same folder, then rename): a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {
        "format": FORMAT,
        "arch": cfg.arch,
        "config": cfg.to_dict(),
        "vocab": vocab.chars,
        "state_dict": state,
        "train_state": train_state or {},
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(payload: Any, path: str | Path) -> None:
    """torch.save under a temporary name, renamed when complete; a full disk or an I/O error is one
    CheckpointError and leaves the previous file as it was."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, RuntimeError) as e:  # torch reports a short write as RuntimeError ("unexpected pos ...")
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot write the checkpoint (disk full?): {first}") from e


def safe_torch_load(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load with weights_only=True: plain types and tensors only; anything else is one CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused: holds objects that could run code, or is not a {what}") from e
    except Exception as e:  # a foreign file can fail anywhere in the unpickler (KeyError, IndexError, struct.error...)
        raise CheckpointError(f"{path}: not a readable {what} ({type(e).__name__})") from e


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint without running any code from it (weights_only=True)."""
    data = safe_torch_load(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a crnn_ocr checkpoint (expected format {FORMAT})")
    missing = [k for k in ("config", "vocab", "state_dict") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return data


def model_from_checkpoint(data: dict[str, Any], path: str | Path = "checkpoint") -> tuple[nn.Module, ModelConfig, Vocab]:
    """Rebuild the model, its config and vocabulary from a loaded checkpoint alone."""
    try:
        cfg = ModelConfig.from_dict(dict(data["config"]))
        vocab = Vocab(data["vocab"])
    except (ConfigError, VocabError, TypeError, ValueError) as e:  # ValueError: dict() of a non-mapping
        raise CheckpointError(f"{path}: invalid model description ({e})") from e
    model = create_model(cfg, vocab.num_classes)
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, TypeError) as e:  # TypeError: state_dict is not a mapping
        raise CheckpointError(f"{path}: weights do not fit architecture {cfg.arch}: {str(e).splitlines()[0]}") from e
    model.eval()
    return model, cfg, vocab


def load_model(path: str | Path) -> tuple[nn.Module, ModelConfig, Vocab]:
    return model_from_checkpoint(load_checkpoint(path), path)


def average_checkpoints(paths: list[str | Path]) -> tuple[nn.Module, ModelConfig, Vocab]:
    """The model whose weights are the mean of the checkpoints' (same architecture and vocabulary), e.g. the last
    few saves of a run's cosine tail; integer buffers (BatchNorm's batch count) come from the last one."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    datas = [load_checkpoint(p) for p in paths]
    model, cfg, vocab = model_from_checkpoint(datas[0], paths[0])
    for path, data in zip(paths[1:], datas[1:]):
        if dict(data["config"]) != cfg.to_dict() or data["vocab"] != vocab.chars:
            raise CheckpointError(f"{path}: architecture or vocabulary differs from {paths[0]}; cannot average")
    model.load_state_dict(mean_state_dict([d["state_dict"] for d in datas]))
    return model, cfg, vocab


def mean_state_dict(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of same-shaped state dicts' float tensors; integer buffers (BatchNorm's batch
    count) come from the last one."""
    mean = {}
    for name, first in state_dicts[0].items():
        if first.is_floating_point():
            mean[name] = (sum(sd[name].double() for sd in state_dicts) / len(state_dicts)).to(first.dtype)
        else:
            mean[name] = state_dicts[-1][name]
    return mean
