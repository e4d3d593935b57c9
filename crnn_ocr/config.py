"""Dataclass configurations, validated on construction, serialisable to plain dicts (and so to checkpoints)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from crnn_ocr.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class ModelConfig:
    """What a model needs to be rebuilt and fed: architecture, input geometry and normalisation.

    The preprocessing parameters travel with the model (in the checkpoint and the ONNX metadata).
    """

    arch: str = "crnn_s"
    height: int = 32
    channels: int = 1
    mean: float = 0.5
    std: float = 0.5
    min_width: int = 16
    max_width: int = 1600
    width_stride: int = 4
    hidden: int | None = None
    dropout: float = 0.0
    rectify: str | None = None  # "tps": a thin-plate-spline rectifier in front of the CNN (curved text)

    def __post_init__(self) -> None:
        _check(isinstance(self.arch, str) and bool(self.arch), "model.arch must be a name")
        _check(self.height in (16, 32, 48, 64), f"model.height must be 16, 32, 48 or 64, not {self.height}")
        _check(self.channels in (1, 3), f"model.channels must be 1 or 3, not {self.channels}")
        _check(math.isfinite(self.mean) and math.isfinite(self.std), "model.mean and model.std must be finite numbers")
        _check(self.std > 0, "model.std must be positive")
        _check(0 < self.min_width <= self.max_width, "model.min_width must be positive and <= max_width")
        _check(self.width_stride >= 1, "model.width_stride must be >= 1")
        _check(self.hidden is None or self.hidden > 0, "model.hidden must be positive")
        _check(0 <= self.dropout < 1, "model.dropout must be in [0, 1)")
        _check(self.rectify in (None, "tps"), f"model.rectify must be \"tps\" or left out, not {self.rectify!r}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["rectify"] is None:  # left out: configs of models without it read as they did before it existed
            del data["rectify"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return build(cls, data, "model")


@dataclass
class DataSource:
    """One training data source: a path (LMDB, folder with labels.tsv, .gt.txt pairs) or "synth", and its share."""

    path: str
    ratio: float = 1.0

    def __post_init__(self) -> None:
        _check(bool(self.path), "data source needs a path")
        _check(self.ratio > 0, f"data source {self.path}: ratio must be positive")


@dataclass
class TrainConfig:
    """Everything a training run needs. Values come from a TOML file and/or command-line flags."""

    train: list[DataSource] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    out: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    vocab: str | None = None
    vocab_file: str | None = None
    init: str | None = None
    freeze_cnn: bool = False
    train_only: list[str] = field(default_factory=list)  # parts that learn ("rectifier", "cnn", "rnn", "head"): the rest stay
    steps: int = 10000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    schedule: str = "cosine"
    min_lr_ratio: float = 0.02
    grad_clip: float = 5.0
    val_every: int = 1000
    val_limit: int = 2000
    checkpoint_every: int = 500
    keep_every: int = 0
    early_stop: int = 0
    max_minutes: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = -1
    threads: int = 0
    augment: float = 0.5
    bucket_chunks: int = 8
    max_label_length: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        self.train = [s if isinstance(s, DataSource) else build(DataSource, s, "train") for s in self.train]
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        _check(self.steps > 0, "steps must be positive")
        _check(self.batch_size > 0, "batch_size must be positive")
        _check(self.lr > 0, "lr must be positive")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(self.warmup_steps >= 0, "warmup_steps must be >= 0")
        _check(self.schedule in ("cosine", "onecycle", "constant"), "schedule must be cosine, onecycle or constant")
        _check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]")
        _check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 turns it off)")
        _check(self.val_every > 0 and self.checkpoint_every > 0, "val_every and checkpoint_every must be positive")
        _check(self.early_stop >= 0, "early_stop must be >= 0 (0 turns it off)")
        _check(self.keep_every >= 0, "keep_every must be >= 0 (0 keeps no snapshots)")
        _check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device must be auto, cpu or cuda")
        _check(self.precision in ("auto", "fp32", "bf16", "fp16"), "precision must be auto, fp32, bf16 or fp16")
        _check(0 <= self.augment <= 1, "augment must be a probability in [0, 1]")
        _check(self.bucket_chunks >= 1, "bucket_chunks must be >= 1")
        _check(self.vocab is None or self.vocab_file is None, "give vocab or vocab_file, not both")
        _check(isinstance(self.train_only, list) and all(isinstance(part, str) for part in self.train_only),
               "train_only must be a list of part names, e.g. [\"rectifier\"]")

    def to_dict(self) -> dict[str, Any]:
        data = {**dataclasses.asdict(self), "model": self.model.to_dict()}
        if not data["train_only"]:  # left out when everything trains: runs saved before the key existed compare equal
            del data["train_only"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return build(cls, data, "train config")

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Load a TOML (or YAML, if PyYAML is installed) file; `overrides` (e.g. from flags) win."""
        data = load_config_file(path)
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        base = Path(path).parent
        for src in data.get("train", []):
            if isinstance(src, dict) and src.get("path") not in (None, "synth"):
                src["path"] = _resolve(base, src["path"])
        if "val" in data:
            data["val"] = [_resolve(base, p) for p in data["val"]]
        return cls.from_dict(data)


def _resolve(base: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or p.exists() else (base / p))


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError as e:
                raise ConfigError("YAML configs need PyYAML (pip install pyyaml); TOML needs nothing") from e
            return yaml.safe_load(text) or {}
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from e


def build(cls: type, data: dict[str, Any], what: str):
    """Construct dataclass `cls` from `data`, naming unknown keys and wrong types in the error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a table, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from e
