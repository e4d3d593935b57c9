"""CRNN (Shi, Bai, Yao 2015): a CNN collapses the image height to 1, a BiLSTM reads the columns, a linear
layer scores each column. Output frames T = W // 4 (batches are padded to a multiple of 4). With
`cfg.rectify == "tps"` a thin-plate-spline rectifier (`crnn_ocr.models.rectify`) straightens the image first.
"""

from __future__ import annotations

import torch
from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.models.base import RecognitionModel
from crnn_ocr.models.rectify import TPSRectifier
from crnn_ocr.models.registry import register

POOL = "pool"
POOL_H = "pool_h"


def conv_bn_relu(c_in: int, c_out: int, kernel=(3, 3), padding=(1, 1)) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def build_cnn(channels: int, height: int, plan: list, out_channels: int) -> tuple[nn.Sequential, int]:
    """Stack convs and pools from `plan`; "pool" halves height and width, "pool_h" halves only the height.

    Four height-halvings leave height/16 rows; a last conv with a (height/16, 1) kernel collapses them, so the
    height is removed by fixed-size ops only (no adaptive pooling: dynamic-width ONNX stays exact).
    """
    layers: list[nn.Module] = []
    c = channels
    for step in plan:
        if step == POOL:
            layers.append(nn.MaxPool2d(2, 2))
        elif step == POOL_H:
            layers.append(nn.MaxPool2d((2, 1), (2, 1)))
        else:
            layers += conv_bn_relu(c, step)
            c = step
    rows = height // 16
    layers += conv_bn_relu(c, out_channels, kernel=(rows, 1), padding=(0, 0))
    return nn.Sequential(*layers), out_channels


class CRNN(RecognitionModel):
    """CNN features -> stacked bidirectional LSTM -> per-column class logits.

    forward: images (B, C, H, W) float32 -> logits (B, T, K), T = W // 4, K = vocabulary size + 1.
    """

    time_stride = 4  # two 2x2 poolings; the others halve only the height

    def __init__(self, cfg: ModelConfig, num_classes: int, plan: list, features: int, hidden: int, layers: int = 2):
        super().__init__(cfg, num_classes)
        self.rectifier = TPSRectifier(cfg.channels) if cfg.rectify == "tps" else None
        self.cnn, c = build_cnn(cfg.channels, cfg.height, plan, features)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = nn.LSTM(c, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                           dropout=cfg.dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, num_classes)

    def backbone(self) -> nn.Module:
        return self.cnn

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.rectifier is not None:
            images = self.rectifier(images)  # same shape, text straightened
        features = self.cnn(images)  # (B, C, 1, W/4)
        features = features.squeeze(2).permute(0, 2, 1)  # (B, C, 1, T) -> (B, T, C)
        sequence, _ = self.rnn(self.dropout(features))  # (B, T, 2 * hidden)
        return self.head(self.dropout(sequence))  # (B, T, K)


@register("crnn_s")
def crnn_small(cfg: ModelConfig, num_classes: int) -> CRNN:
    """CPU-first CRNN: 4 convs (32-128 channels) + 256 collapse, BiLSTM 2 x 128; about 1.1M parameters."""
    plan = [32, POOL, 64, POOL, 128, POOL_H, 128, POOL_H]
    return CRNN(cfg, num_classes, plan, features=256, hidden=cfg.hidden or 128)


@register("crnn_m")
def crnn_medium(cfg: ModelConfig, num_classes: int) -> CRNN:
    """Twice crnn_s's convolution work: 6 convs (32-192 channels) + 256 collapse, BiLSTM 2 x 128; about 1.7M."""
    plan = [32, POOL, 64, POOL, 128, 128, POOL_H, 192, 192, POOL_H]
    return CRNN(cfg, num_classes, plan, features=256, hidden=cfg.hidden or 128)


@register("crnn_vgg")
def crnn_vgg(cfg: ModelConfig, num_classes: int) -> CRNN:
    """The paper's network: VGG-style 64-128-256-256-512-512 convs + 512 collapse, BiLSTM 2 x 256; about 8M."""
    plan = [64, POOL, 128, POOL, 256, 256, POOL_H, 512, 512, POOL_H]
    return CRNN(cfg, num_classes, plan, features=512, hidden=cfg.hidden or 256)
