"""DBNet text detectors small enough to train on a CPU: a registry of named sizes, and their checkpoint files.

Every architecture is a MobileNetV2-style backbone (inverted residual blocks of depthwise-separable convs,
features at strides 4, 8, 16 and 32), an FPN neck that fuses them at 1/4 resolution, and a DB head with two
branches (probability and threshold), each giving one map per text level (`DetectorConfig.levels`, by default
channel 0 words and channel 1 lines).

Contract: `forward(images (B, C, H, W)) -> logits (B, 2L, H/4, W/4)`, L = len(cfg.levels): probability logits
first, threshold logits after; no sigmoid, no loss, no upsampling inside (`maps_from_logits` does those). H and
W must be multiples of 32; every resampling uses fixed scale factors, so ONNX export keeps H and W dynamic.

>>> import torch
>>> net = create_detector(DetectorConfig(arch="db_tiny"))
>>> tuple(net(torch.zeros(1, 3, 64, 96)).shape)
(1, 4, 16, 24)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.detect.config import DetectorConfig
from crnn_ocr.errors import ArchitectureError, CheckpointError, ConfigError
from crnn_ocr.models.checkpoint import atomic_torch_save, safe_torch_load, unwrap
from crnn_ocr.registry import Registry

FORMAT = "crnn_ocr.detector/1"
OUTPUT_STRIDE = 4  # the network's native output resolution

DetectorFactory = Callable[[DetectorConfig], nn.Module]
_REGISTRY: Registry[DetectorFactory] = Registry("detector architecture", ArchitectureError)


def register(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator: register `factory(cfg) -> nn.Module` under `name`; a second registration raises."""
    return _REGISTRY.register(name)


def available() -> list[str]:
    """Names of the registered detector architectures."""
    return _REGISTRY.names()


def create_detector(cfg: DetectorConfig) -> nn.Module:
    """Build the architecture `cfg.arch`, with one probability and one threshold map per level of `cfg`."""
    return _REGISTRY.get(cfg.arch)(cfg)


# ----- building blocks -----
class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm + optional ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1: a 3x3 conv at about 1/9 of the cost, for the wide 1/4-resolution maps."""

    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBN(cin, cin, 3, groups=cin), ConvBN(cin, cout, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, depthwise 3x3 (stride), linear 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: float):
        super().__init__()
        mid = int(round(cin * expand))
        layers: list[nn.Module] = [ConvBN(cin, mid, 1)] if mid != cin else []
        layers += [ConvBN(mid, mid, 3, stride, groups=mid), ConvBN(mid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


@dataclass(frozen=True)
class NetSpec:
    """Widths of one size: stem, then per stage (strides 4, 8, 16, 32) output channels, blocks and expansion;
    FPN width and head width."""

    stem: int
    stages: tuple[tuple[int, int, float], ...]
    inner: int
    head: int


class Backbone(nn.Module):
    def __init__(self, channels: int, spec: NetSpec):
        super().__init__()
        # a plain 3x3 at full resolution, then a cheap separable conv at 1/2 (MobileNet's stem)
        self.stem = nn.Sequential(ConvBN(channels, spec.stem, 3, 2), InvertedResidual(spec.stem, spec.stem, 1, 1.0))
        cin = spec.stem
        self.stages = nn.ModuleList()
        for i, (cout, blocks, expand) in enumerate(spec.stages):
            # entering 1/4 resolution, expanding at 1/2 would be the costliest layer of the net: go separable
            layers = [InvertedResidual(cin, cout, 2, expand if i else 1.0)]
            layers += [InvertedResidual(cout, cout, 1, expand) for _ in range(blocks - 1)]
            self.stages.append(nn.Sequential(*layers))
            cin = cout
        self.out_channels = [c for c, _, _ in spec.stages]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats  # strides 4, 8, 16, 32


class FPN(nn.Module):
    """DB's neck: lateral 1x1s, top-down sums, each level smoothed to inner/4 channels, upsampled to 1/4 and
    concatenated (inner channels at 1/4 resolution)."""

    def __init__(self, in_channels: list[int], inner: int):
        super().__init__()
        self.lateral = nn.ModuleList(ConvBN(c, inner, 1) for c in in_channels)
        self.smooth = nn.ModuleList(SeparableConv(inner, inner // 4) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 2, -1, -1):  # top-down; sizes double exactly because H, W are multiples of 32
            lat[i] = lat[i] + F.interpolate(lat[i + 1], scale_factor=2.0, mode="nearest")
        outs = [conv(p) for conv, p in zip(self.smooth, lat)]
        outs = [outs[0]] + [F.interpolate(o, scale_factor=float(2 ** i), mode="nearest") for i, o in enumerate(outs[1:], 1)]
        return torch.cat(outs, dim=1)  # 4 x (B, inner/4, H/4, W/4) -> (B, inner, H/4, W/4)


class DBHead(nn.Module):
    """One branch of DB's head: a separable 3x3 and a 1x1 to one logit map per level, at 1/4 resolution."""

    def __init__(self, inner: int, head: int, levels: int, prior: float):
        super().__init__()
        self.body = SeparableConv(inner, head)
        self.out = nn.Conv2d(head, levels, 1)
        nn.init.constant_(self.out.bias, prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class DBNet(nn.Module):
    """Backbone + FPN + DB head (probability and threshold branches); see the module docstring."""

    stride = OUTPUT_STRIDE

    def __init__(self, cfg: DetectorConfig, spec: NetSpec):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg.channels, spec)
        self.neck = FPN(self.backbone.out_channels, spec.inner)
        # starting from p = 0.1 rather than 0.5: most pixels are background, so early BCE is calmer
        self.prob_head = DBHead(spec.inner, spec.head, cfg.num_levels, prior=-2.2)
        self.thresh_head = DBHead(spec.inner, spec.head, cfg.num_levels, prior=0.0)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.prob_head.out and m is not self.thresh_head.out:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _check(self, x: torch.Tensor) -> None:
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            if x.shape[-1] % 32 or x.shape[-2] % 32:
                raise ConfigError(f"detector input sides must be multiples of 32, got {tuple(x.shape[-2:])}")

    def prob_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> probability logits (B, L, H/4, W/4); the threshold branch is skipped (inference)."""
        self._check(x)
        return self.prob_head(self.neck(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        fused = self.neck(self.backbone(x))
        return torch.cat([self.prob_head(fused), self.thresh_head(fused)], dim=1)  # (B, 2L, H/4, W/4)


def maps_from_logits(prob_logits: torch.Tensor, output_stride: int = 1) -> torch.Tensor:
    """Probability maps from probability logits (B, L, H/4, W/4): bilinearly upsampled to (H, W) first when
    `output_stride` is 1 (upsampling logits, not probabilities, keeps thin kernels' peaks sharp)."""
    if output_stride != OUTPUT_STRIDE:
        prob_logits = F.interpolate(prob_logits, scale_factor=float(OUTPUT_STRIDE // output_stride), mode="bilinear",
                                    align_corners=False)
    return torch.sigmoid(prob_logits)


class DetectorMaps(nn.Module):
    """`images -> maps` (probabilities, (B, L, H / s, W / s), s = cfg.output_stride): what ONNX export traces and
    what the torch inference path runs."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = unwrap(net)
        self.output_stride = self.net.cfg.output_stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return maps_from_logits(self.net.prob_logits(images), self.output_stride)


# ----- the registered sizes -----
_SPECS = {
    # Widths chosen by timing forward + backward on one CPU thread (benchmarks/bench_detector_speed.py): the
    # 1/4- and 1/2-resolution layers dominate, so they stay narrow and the depth sits at strides 16 and 32.
    # 0.20M parameters (0.8 MB fp32 ONNX)
    "db_tiny": NetSpec(stem=16, stages=((24, 2, 2.0), (32, 3, 3.0), (64, 3, 3.0), (96, 2, 3.0)), inner=48, head=16),
    # 0.67M (2.7 MB): the default
    "db_small": NetSpec(stem=16, stages=((24, 2, 3.0), (48, 3, 4.0), (96, 4, 4.0), (160, 2, 4.0)), inner=64, head=16),
    # 1.17M (4.7 MB): the most the 5 MB budget allows
    "db_base": NetSpec(stem=16, stages=((32, 2, 3.0), (64, 3, 4.0), (112, 4, 4.0), (176, 3, 4.0)), inner=96, head=24),
}


def _factory(spec: NetSpec) -> DetectorFactory:
    def build(cfg: DetectorConfig) -> nn.Module:
        return DBNet(cfg, spec)

    return build


for _name, _spec in _SPECS.items():
    register(_name)(_factory(_spec))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----- checkpoints -----
def save_detector(path: str | Path, model: nn.Module, cfg: DetectorConfig, train_state: dict[str, Any] | None = None) -> None:
    """Write `{"format", "arch", "config", "state_dict", "train_state"}` atomically; loadable with
    `torch.load(weights_only=True)` (plain types and tensors only)."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    atomic_torch_save({"format": FORMAT, "arch": cfg.arch, "config": cfg.to_dict(), "state_dict": state,
                       "train_state": train_state or {}}, path)


def load_detector_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a detector checkpoint without running code from it; CheckpointError if foreign."""
    data = safe_torch_load(path, "detector checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a crnn_ocr detector checkpoint (format {found!r}, expected {FORMAT})")
    missing = [k for k in ("config", "state_dict") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: detector checkpoint lacks {', '.join(missing)}")
    return data


def detector_from_checkpoint(data: dict[str, Any], path: str | Path = "checkpoint") -> tuple[nn.Module, DetectorConfig]:
    """Rebuild the detector (eval mode) and its config from a loaded checkpoint alone."""
    try:
        cfg = DetectorConfig.from_dict(dict(data["config"]))
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid detector description ({e})") from e
    model = create_detector(cfg)
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit architecture {cfg.arch}: {str(e).splitlines()[0]}") from e
    model.eval()
    return model, cfg


def average_detectors(paths: list[str | Path]) -> tuple[nn.Module, DetectorConfig]:
    """The detector whose weights (and BatchNorm statistics) are the mean of the checkpoints' (same architecture
    and levels), e.g. the best weights of successive warm restarts of one run."""
    from crnn_ocr.models.checkpoint import mean_state_dict

    if not paths:
        raise CheckpointError("no detector checkpoints to average")
    datas = [load_detector_checkpoint(p) for p in paths]
    model, cfg = detector_from_checkpoint(datas[0], paths[0])
    for path, data in zip(paths[1:], datas[1:]):
        other = DetectorConfig.from_dict(dict(data["config"]))
        if (other.arch, tuple(other.levels)) != (cfg.arch, tuple(cfg.levels)):
            raise CheckpointError(f"{path}: a {other.arch} detector of levels {list(other.levels)}; {paths[0]} is a "
                                  f"{cfg.arch} of {list(cfg.levels)}: cannot average")
    model.load_state_dict(mean_state_dict([d["state_dict"] for d in datas]))
    return model, cfg


def load_detector(path: str | Path) -> tuple[nn.Module, DetectorConfig]:
    """`(model, config)` from a detector checkpoint file.

    >>> # model, cfg = load_detector("runs/detector/best.pt")
    """
    return detector_from_checkpoint(load_detector_checkpoint(path), path)
