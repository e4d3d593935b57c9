"""The GAN's two networks, both fully convolutional so that any width goes through.

Images are float tensors (B, C, H, W) scaled to [-1, 1] (`to_unit` / `from_unit` convert from and to uint8).

* `Generator`: a residual encoder/decoder (one stride-2 level, residual blocks, a skip connection from the
  full-resolution features) that takes a rendered image and a noise channel and returns an image of the same
  size. Its output is `input + correction`, and the last convolution starts at zero, so an untrained
  generator is exactly the identity: training begins from readable images and moves away only as far as the
  losses ask.
* `PatchDiscriminator`: a PatchGAN (Isola et al. 2017) with spectral normalisation (Miyato et al. 2018):
  one score per ~38x38 pixel patch, (B, 1, H/8, W/8), so it judges texture and stroke look, not the text.

>>> import torch
>>> g, d = Generator(GanConfig()), PatchDiscriminator(GanConfig())
>>> x = torch.zeros(2, 1, 32, 88)
>>> tuple(g(x).shape), tuple(d(x).shape)
((2, 1, 32, 88), (2, 1, 4, 11))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from crnn_ocr.config import build
from crnn_ocr.errors import ConfigError

DISC_STRIDE = 8  # three stride-2 convolutions


@dataclass
class GanConfig:
    """Architecture and input geometry of a GAN; stored in its checkpoint, enough to rebuild both networks."""

    height: int = 32
    channels: int = 1
    noise_channels: int = 1
    gen_width: int = 16
    gen_blocks: int = 3
    disc_width: int = 32

    def __post_init__(self) -> None:
        checks = [
            (self.height in (16, 32, 48, 64), f"gan height must be 16, 32, 48 or 64, not {self.height}"),
            (self.channels in (1, 3), f"gan channels must be 1 or 3, not {self.channels}"),
            (self.noise_channels >= 0, "gan noise_channels must be >= 0"),
            (self.gen_width > 0 and self.disc_width > 0, "gan widths must be positive"),
            (self.gen_blocks >= 0, "gan gen_blocks must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        return build(cls, data, "gan config")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * self.body(x)


class Generator(nn.Module):
    """Rendered image (+ noise) -> realistic image of the same size. forward: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        c, c2 = cfg.gen_width, 2 * cfg.gen_width
        act = nn.LeakyReLU(0.2, inplace=True)
        self.stem = nn.Sequential(nn.Conv2d(cfg.channels + cfg.noise_channels, c, 3, padding=1, padding_mode="replicate"), act)
        self.down = nn.Sequential(nn.Conv2d(c, c2, 4, stride=2, padding=1), act)
        self.blocks = nn.Sequential(*[ResidualBlock(c2) for _ in range(cfg.gen_blocks)])
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(c2, c, 3, padding=1, padding_mode="replicate"), act)
        self.out = nn.Conv2d(2 * c, cfg.channels, 3, padding=1, padding_mode="replicate")
        nn.init.zeros_(self.out.weight)  # identity at initialisation: output = input
        nn.init.zeros_(self.out.bias)

    def make_noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise (B, noise_channels, H, W), drawn on the CPU so a seed gives the same noise anywhere."""
        b, _, h, w = x.shape
        noise = torch.randn(b, self.cfg.noise_channels, h, w, generator=generator, dtype=torch.float32)
        return noise.to(device=x.device, dtype=x.dtype)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1] -> (B, C, H, W), not clamped (clamp when converting to pixels)."""
        b, c, h, w = x.shape
        if c != self.cfg.channels:
            raise ValueError(f"generator expects {self.cfg.channels} channel(s), got {c}")
        if self.cfg.noise_channels:
            if noise is None:
                noise = self.make_noise(x, generator)
            inp = torch.cat([x, noise], dim=1)  # (B, C + Z, H, W)
        else:
            inp = x
        pad_h, pad_w = h % 2, w % 2  # the stride-2 level needs even sides; pad, then cut back
        if pad_h or pad_w:
            inp = F.pad(inp, (0, pad_w, 0, pad_h), mode="replicate")
        skip = self.stem(inp)  # (B, c, H', W')
        features = self.up(self.blocks(self.down(skip)))  # (B, c, H', W') via (B, 2c, H'/2, W'/2)
        delta = self.out(torch.cat([features, skip], dim=1))[:, :, :h, :w]  # (B, C, H, W)
        return x + delta


class PatchDiscriminator(nn.Module):
    """Real-versus-generated score per patch. forward: (B, C, H, W) -> (B, 1, H/8, W/8) raw scores (logits)."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.disc_width
        sn = spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(cfg.channels, d, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(d, 2 * d, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(2 * d, 4 * d, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(4 * d, 1, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patch_columns(widths: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
    """How many discriminator output columns of each image lie (at least partly) inside the image."""
    w = torch.as_tensor(np.asarray(widths), dtype=torch.long)
    return (w + DISC_STRIDE - 1) // DISC_STRIDE


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1]."""
    return images.astype(np.float32) * (2.0 / 255.0) - 1.0


def from_unit(x: torch.Tensor) -> np.ndarray:
    """float tensor in [-1, 1] (clamped here) -> uint8 numpy array of the same shape."""
    y = (x.detach().float().clamp(-1, 1) + 1.0) * 127.5
    return y.round().to(torch.uint8).cpu().numpy()
