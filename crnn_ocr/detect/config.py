"""Configurations of the text detector: the model's (travels with it) and a training run's. Torch-free.

`DetectorConfig` is what a detector needs to be rebuilt, fed and decoded: architecture, normalisation, which
text levels its output channels hold, the inference resize rule and the post-processing thresholds. It lives in
the checkpoint (`config`) and in the ONNX `metadata_props`, so an exported file alone is enough.

>>> cfg = DetectorConfig(arch="db_tiny")
>>> DetectorConfig.from_dict(cfg.to_dict()) == cfg
True
>>> cfg.channel_of("line")
1
"""

from __future__ import annotations

import dataclasses
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crnn_ocr.config import build, load_config_file
from crnn_ocr.errors import ConfigError

LEVELS = ("word", "line")  # every level a region may have; a detector's channels follow `DetectorConfig.levels`
SIZE_MULTIPLE = 32  # network inputs are multiples of the backbone's total stride


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _floats(value: Any, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),)
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"detector.{name} must be a number or a list of numbers") from e


@dataclass
class DetectorConfig:
    """A DB (Differentiable Binarization) text detector: architecture, input, output channels, decoding.

    Attributes:
        arch: a name registered in `crnn_ocr.detect.nets`.
        channels: input channels (3 RGB; 1 gray).
        mean, std: per-channel normalisation of pixels scaled to [0, 1].
        levels: what each output channel detects, in order (channel 0 words, channel 1 lines by default).
        train_size: side of the square training crops.
        max_side: inference resize: the long side is scaled down to at most this (never up), then both sides
            are rounded to multiples of 32.
        output_stride: 1: the ONNX `maps` output is upsampled to the input size; 4: maps at 1/4 resolution.
        binarize_threshold: probability above which a pixel belongs to a text kernel.
        box_threshold: minimum mean probability inside a candidate box.
        unclip_ratio: how far a kernel box is grown back (offset = area * ratio / perimeter).
        shrink_ratio: r of the training targets (kernel offset D = A (1 - r^2) / L).
        min_size: boxes whose short side (input pixels) is below this are dropped.
        max_boxes: at most this many boxes per level and image (highest scores kept).
    """

    arch: str = "db_small"
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    levels: tuple[str, ...] = LEVELS
    train_size: int = 640
    max_side: int = 1280
    output_stride: int = 1
    binarize_threshold: float = 0.3
    box_threshold: float = 0.6
    unclip_ratio: float = 1.5
    shrink_ratio: float = 0.4
    min_size: float = 3.0
    max_boxes: int = 1000

    def __post_init__(self) -> None:
        self.mean, self.std = _floats(self.mean, "mean"), _floats(self.std, "std")
        if isinstance(self.levels, str):
            self.levels = (self.levels,)
        self.levels = tuple(self.levels)
        _check(isinstance(self.arch, str) and bool(self.arch), "detector.arch must be a name")
        _check(self.channels in (1, 3), f"detector.channels must be 1 or 3, not {self.channels}")
        _check(len(self.mean) in (1, self.channels) and len(self.std) in (1, self.channels),
               f"detector.mean and std need 1 or {self.channels} values")
        _check(all(s > 0 for s in self.std), "detector.std must be positive")
        _check(len(self.levels) >= 1 and len(set(self.levels)) == len(self.levels) and set(self.levels) <= set(LEVELS),
               f"detector.levels must be distinct names among {LEVELS}, not {self.levels}")
        _check(self.train_size >= 64 and self.train_size % SIZE_MULTIPLE == 0,
               f"detector.train_size must be a multiple of {SIZE_MULTIPLE} and >= 64")
        _check(self.max_side >= SIZE_MULTIPLE, f"detector.max_side must be >= {SIZE_MULTIPLE}")
        _check(self.output_stride in (1, 4), "detector.output_stride must be 1 or 4")
        _check(0 < self.binarize_threshold < 1, "detector.binarize_threshold must be in (0, 1)")
        _check(0 <= self.box_threshold < 1, "detector.box_threshold must be in [0, 1)")
        _check(self.unclip_ratio > 0, "detector.unclip_ratio must be positive")
        _check(0 < self.shrink_ratio < 1, "detector.shrink_ratio must be in (0, 1)")
        _check(self.min_size >= 0, "detector.min_size must be >= 0")
        _check(self.max_boxes >= 1, "detector.max_boxes must be >= 1")

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def channel_of(self, level: str) -> int:
        """The output channel of `level`; ConfigError if this detector does not predict it."""
        if level not in self.levels:
            raise ConfigError(f"this detector predicts {', '.join(self.levels)}, not {level!r}")
        return self.levels.index(level)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        return build(cls, data, "detector")


@dataclass
class SceneSource:
    """One folder of whole images with `labels.jsonl` (see ../shared/train/scenes/README.md), or a glob of them.

    Attributes:
        path: the folder, or a glob pattern matching several (e.g. "data/synth/scenes/*").
        weight: share of training samples drawn from this source (relative to the others).
        levels: the levels it supervises; None: the levels found in its labels. A level it does not supervise is
            masked out of the loss on its images.
        complete: every text of the supervised levels is boxed. False (e.g. SVT, which boxes only some words):
            pixels outside the labelled boxes' surroundings are "don't care", so its images never supply
            negatives, and validation reports recall only.
        rotate90: probability of turning a sample by 90, 180 or 270 degrees (document sets).
        holdout: images kept out of training for validation (a fixed, name-hashed choice).
    """

    path: str
    weight: float = 1.0
    levels: list[str] | None = None
    complete: bool = True
    rotate90: float = 0.0
    holdout: int = 0

    def __post_init__(self) -> None:
        _check(isinstance(self.path, str) and bool(self.path), "data source needs a path")
        _check(self.weight > 0, f"data source {self.path}: weight must be positive")
        if self.levels is not None:
            self.levels = [self.levels] if isinstance(self.levels, str) else list(self.levels)
            _check(bool(self.levels) and set(self.levels) <= set(LEVELS),
                   f"data source {self.path}: levels must be among {LEVELS}")
        _check(0 <= self.rotate90 <= 1, f"data source {self.path}: rotate90 is a probability")
        _check(self.holdout >= 0, f"data source {self.path}: holdout must be >= 0")


@dataclass
class DetectTrainConfig:
    """A detector training run. Values come from a TOML file (data/recipes/detector.toml) and/or flags.

    The loss is DB's: BCE with 3:1 hard-negative mining on the probability map, dice on the approximate binary
    map, L1 on the threshold map, weighted 1 / 1 / 10, each summed over the channels a sample supervises.
    `loss_stride` 1 upsamples the network's 1/4-resolution logits to the crop size and builds targets there;
    4 builds the targets at 1/4 resolution (cheaper; small text loses its kernels).
    """

    data: list[SceneSource] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    out: str = "runs/detector"
    model: DetectorConfig = field(default_factory=DetectorConfig)
    init: str | None = None
    steps: int = 6000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 300
    schedule: str = "cosine"
    min_lr_ratio: float = 0.02
    poly_power: float = 0.9
    grad_clip: float = 5.0
    loss_stride: int = 1
    ohem_ratio: float = 3.0
    min_negatives: int = 2048
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    l1_weight: float = 10.0
    scale_range: tuple[float, float] = (0.5, 2.0)
    rotate_degrees: float = 10.0
    rotate_prob: float = 0.3
    color_jitter: float = 0.3
    crop_tries: int = 8
    val_every: int = 500
    val_limit: int = 0
    val_max_side: int = 0
    select_by: str = "mean"  # best.pt by the mean hmean of the complete held-out sets, or one "folder/level"
    checkpoint_every: int = 100
    log_every: int = 20
    max_minutes: float = 0.0
    threads: int = 0
    workers: int = 0
    device: str = "auto"    # auto (a CUDA GPU when torch sees one, else the CPU) | cpu | cuda | cuda:N
    seed: int = 0

    def __post_init__(self) -> None:
        self.data = [s if isinstance(s, SceneSource) else build(SceneSource, s, "data") for s in self.data]
        if isinstance(self.model, dict):
            self.model = DetectorConfig.from_dict(self.model)
        self.scale_range = tuple(float(v) for v in self.scale_range)  # type: ignore[assignment]
        _check(self.steps > 0 and self.batch_size > 0, "steps and batch_size must be positive")
        _check(self.lr > 0 and self.weight_decay >= 0, "lr must be positive and weight_decay >= 0")
        _check(self.warmup_steps >= 0, "warmup_steps must be >= 0")
        _check(self.schedule in ("cosine", "poly", "constant"), "schedule must be cosine, poly or constant")
        _check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]")
        _check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 turns it off)")
        _check(self.loss_stride in (1, 2, 4), "loss_stride must be 1, 2 or 4")
        _check(self.ohem_ratio > 0 and self.min_negatives >= 0, "ohem_ratio must be positive, min_negatives >= 0")
        _check(min(self.bce_weight, self.dice_weight, self.l1_weight) >= 0, "loss weights must be >= 0")
        _check(len(self.scale_range) == 2 and 0 < self.scale_range[0] <= self.scale_range[1],
               "scale_range must be [low, high] with 0 < low <= high")
        _check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
               "device must be auto, cpu, cuda or cuda:N")
        _check(0 <= self.rotate_degrees <= 45, "rotate_degrees must be in [0, 45]")
        _check(0 <= self.rotate_prob <= 1 and 0 <= self.color_jitter <= 1, "rotate_prob and color_jitter are in [0, 1]")
        _check(self.crop_tries >= 1, "crop_tries must be >= 1")
        _check(self.val_every > 0 and self.checkpoint_every > 0 and self.log_every > 0,
               "val_every, checkpoint_every and log_every must be positive")
        _check(self.val_limit >= 0 and self.val_max_side >= 0, "val_limit and val_max_side must be >= 0")
        _check(self.select_by == "mean" or self.select_by.count("/") == 1,
               f"select_by must be mean or folder/level (e.g. msra_td500_train/line), not {self.select_by!r}")
        _check(self.threads >= 0 and self.workers >= 0, "threads and workers must be >= 0")
        for path in [s.path for s in self.data] + list(self.val):
            _check(not _is_eval_set(path), f"{path}: ../shared/eval is for evaluation only; hold out train images")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectTrainConfig:
        return build(cls, data, "detector train config")

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> DetectTrainConfig:
        """Load a TOML file; `overrides` (e.g. from flags) win. Relative paths: see `_resolve`."""
        data = load_config_file(path)
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        base = Path(path).parent
        for src in data.get("data", []):
            if isinstance(src, dict) and isinstance(src.get("path"), str):
                src["path"] = _resolve(base, src["path"])
        if isinstance(data.get("val"), list):
            data["val"] = [_resolve(base, p) for p in data["val"]]
        if isinstance(data.get("init"), str):
            data["init"] = _resolve(base, data["init"])
        return cls.from_dict(data)


def _resolve(base: Path, path: str) -> str:
    """`path` as given when it exists (relative to the current folder), else relative to the config file's folder
    when it exists there; a path found in neither place stays as given (renders made later, from the same folder)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or glob.glob(str(p)):
        return str(p)
    if (base / p).exists() or glob.glob(str(base / p)):
        return str(base / p)
    return str(p)


def _is_eval_set(path: str) -> bool:
    """Whether `path` lies in the shared evaluation sets (`.../shared/eval/...`)."""
    parts = Path(path).expanduser().resolve().parts if not glob.has_magic(path) else Path(path).parts
    return any(a == "shared" and b == "eval" for a, b in zip(parts, parts[1:]))


def expand_sources(sources: list[SceneSource], log=print) -> list[SceneSource]:
    """Globs expanded into one source per folder (same settings, the weight shared equally among the matches); a
    folder without labels.jsonl stands for its subfolders that have one (a renderer's output folder of sets);
    paths with no labels.jsonl at all are skipped with a warning (e.g. renders not made yet), so one recipe serves
    before and after they exist."""
    out: list[SceneSource] = []
    for src in sources:
        paths = sorted(glob.glob(src.path)) if glob.has_magic(src.path) else [src.path]
        found = []
        for p in paths:
            if (Path(p) / "labels.jsonl").is_file():
                found.append(p)
            elif Path(p).is_dir():
                found += [str(d) for d in sorted(Path(p).iterdir()) if (d / "labels.jsonl").is_file()]
        if not found:
            log(f"warning: skipping data source {src.path}: no folder with labels.jsonl there")
        for p in found:
            out.append(dataclasses.replace(src, path=p, weight=src.weight / len(found)))
    return out
