"""The interface every recognition network implements. The trainer, export and checkpoints use nothing else.

>>> import torch
>>> from torch import nn
>>> from crnn_ocr.config import ModelConfig
>>> class Tiny(RecognitionModel):
...     time_stride = 4
...     def __init__(self, cfg, num_classes):
...         super().__init__(cfg, num_classes)
...         self.features = nn.Conv2d(cfg.channels, 8, (cfg.height, 4), stride=(1, 4))
...         self.head = nn.Linear(8, num_classes)
...     def forward(self, images):
...         columns = self.features(images).squeeze(2).permute(0, 2, 1)  # (B, 8, 1, T) -> (B, T, 8)
...         return self.head(columns)  # (B, T, K)
>>> Tiny(ModelConfig(), 5)(torch.zeros(2, 1, 32, 40)).shape
torch.Size([2, 10, 5])
"""

from __future__ import annotations

import dataclasses

from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ConfigError


class RecognitionModel(nn.Module):
    """A text-line recogniser: images (B, C, H, W) -> per-column class logits (B, T, K).

    What a subclass provides:
        time_stride: input pixels per output column (T = W // time_stride); class attribute, default 4. The
            model's `cfg.width_stride` is set from it, so preprocessing and the ONNX metadata follow the network.
        forward(images): logits (B, T, K), K = num_classes (vocabulary + CTC blank at index 0); no softmax,
            no loss, no decoding; height removed by fixed-size operations only (dynamic-width ONNX export).
        backbone(): the feature extractor, kept fixed by `freeze_cnn` when fine-tuning (default: the
            `features` attribute).
        class_layers(): the state-dict names of the tensors whose first dimension indexes the classes (the
            head); fine-tuning on a new alphabet keeps their rows for shared characters (default: `head.weight`,
            `head.bias`).
    """

    time_stride: int = 4

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        self.cfg = dataclasses.replace(cfg, width_stride=self.time_stride)
        self.num_classes = num_classes

    def backbone(self) -> nn.Module:
        return self.features

    def class_layers(self) -> list[str]:
        return ["head.weight", "head.bias"]

    def freeze_backbone(self) -> None:
        """Stop training the feature extractor: no gradients, and BatchNorm statistics stay as they are."""
        for p in self.backbone().parameters():
            p.requires_grad_(False)
        self.backbone().eval()

    def parts(self) -> dict[str, nn.Module]:
        """The named parts a fine-tuning run can train alone (`train_only`): the model's direct sub-modules that
        hold weights, e.g. rectifier, cnn, rnn, head."""
        return {name: module for name, module in self.named_children() if any(True for _ in module.parameters())}

    def train_only(self, names: list[str]) -> None:
        """Train only the named parts (see `parts`): the others get no gradients and run as at inference (fixed
        BatchNorm statistics, no dropout); call again after each `train()`. ConfigError for a part it lacks."""
        parts = self.parts()
        unknown = [name for name in names if name not in parts]
        if unknown:
            raise ConfigError(f"train_only: this model has no {', '.join(map(repr, unknown))}; its parts are "
                              f"{', '.join(parts)}")
        for name, module in self.named_children():
            if name not in names:
                for p in module.parameters():
                    p.requires_grad_(False)
                module.eval()
