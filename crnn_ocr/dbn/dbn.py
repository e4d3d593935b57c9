"""A deep belief network: RBMs stacked and pretrained greedily, then fine-tuned as a classifier.

Hinton, Osindero and Teh (2006); Hinton and Salakhutdinov (2006). Layer 1 is an RBM on the data (binary or
Gaussian visible units), each further layer a binary RBM on the hidden probabilities of the one below.
After pretraining, the stack is read as a feed-forward sigmoid network (the RBM weights and hidden biases
become its layers), a softmax layer is put on top and the whole is trained by backprop.

>>> import torch
>>> torch.manual_seed(0) and None
>>> x = torch.rand(64, 8); y = (x[:, 0] > 0.5).long()
>>> net = DBN([8, 6, 4], n_classes=2, seed=0)
>>> _ = net.pretrain(x, epochs=2)
>>> _ = net.fine_tune(x, y, epochs=2)
>>> net(x).shape
torch.Size([64, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from crnn_ocr.dbn.fit import fit_classifier
from crnn_ocr.dbn.rbm import RBM_KINDS, make_rbm
from crnn_ocr.errors import ConfigError

Logger = Callable[[dict[str, Any]], None]


class DBN(nn.Module):
    """Stacked RBMs with a softmax head.

    Args:
        sizes: layer widths, input first: [n_inputs, hidden_1, ..., hidden_L] (L >= 1).
        n_classes: outputs of the softmax head.
        visible: "bernoulli" (inputs in [0, 1]) or "gaussian" (inputs standardised with statistics learned in
            `pretrain`, kept in the model) for the first layer; all others are binary.
        seed: seed of the initial weights.
    """

    def __init__(self, sizes: Sequence[int], n_classes: int = 2, visible: str = "bernoulli", seed: int = 0):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"a DBN needs an input size and at least one hidden layer, got {sizes}")
        if n_classes < 2:
            raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
        if visible not in RBM_KINDS:
            raise ConfigError(f"unknown visible unit kind {visible!r}; expected one of {', '.join(RBM_KINDS)}")
        self.sizes, self.n_classes, self.visible = sizes, n_classes, visible
        self.rbms = nn.ModuleList(
            make_rbm(visible if i == 0 else "bernoulli", a, b, seed=seed + i) for i, (a, b) in enumerate(zip(sizes, sizes[1:])))
        self.head = nn.Linear(sizes[-1], n_classes)
        self.register_buffer("input_mean", torch.zeros(sizes[0]))
        self.register_buffer("input_std", torch.ones(sizes[0]))

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild the network (its weights are the state_dict)."""
        return {"sizes": list(self.sizes), "n_classes": self.n_classes, "visible": self.visible}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DBN:
        return cls(config["sizes"], config.get("n_classes", 2), config.get("visible", "bernoulli"))

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The top hidden layer's probabilities: (B, sizes[0]) -> (B, sizes[-1])."""
        h = self.standardize(x)
        for rbm in self.rbms:
            h = torch.sigmoid(h @ rbm.weight + rbm.hbias)  # (B, V) @ (V, H) -> (B, H)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes)."""
        return self.head(self.features(x))

    def pretrain(self, x: torch.Tensor, epochs: int | Sequence[int] = 10, batch_size: int = 64,
                 lr: float | Sequence[float | None] | None = None, k: int = 1, persistent: bool = False,
                 val: torch.Tensor | None = None, seed: int = 0, log: Logger | None = None) -> list[list[dict[str, Any]]]:
        """Greedy layer-wise pretraining: train RBM 1 on x, RBM 2 on RBM 1's hidden probabilities, and so on.

        `epochs` and `lr` may be given per layer. Returns the per-epoch history of every layer; `log` gets
        each record with its "layer" (1-based) added.
        """
        n = len(self.rbms)
        epochs_l = list(epochs) if isinstance(epochs, Sequence) else [epochs] * n
        lr_l = list(lr) if isinstance(lr, Sequence) else [lr] * n
        if len(epochs_l) != n or len(lr_l) != n:
            raise ConfigError(f"epochs and lr must be given for all {n} layers")
        x = x.float()
        with torch.no_grad():
            if self.visible == "gaussian":
                self.input_mean.copy_(x.mean(0))
                self.input_std.copy_(x.std(0).clamp_min(1e-2))
            h = self.standardize(x)
            hv = self.standardize(val.float()) if val is not None else None
        histories = []
        for i, rbm in enumerate(self.rbms):
            def layer_log(record: dict[str, Any], layer: int = i + 1) -> None:
                if log is not None:
                    log({"layer": layer, **record})

            histories.append(rbm.fit(h, epochs=epochs_l[i], batch_size=batch_size, lr=lr_l[i], k=k,
                                     persistent=persistent, val=hv, seed=seed + i, log=layer_log))
            with torch.no_grad():
                h = rbm.transform(h)
                hv = rbm.transform(hv) if hv is not None else None
        return histories

    def random_init(self, seed: int = 0) -> None:
        """Forget any pretraining: Glorot-uniform weights, zero biases (the usual start of a sigmoid network).

        This is the "same network from random init" baseline of the comparison.
        """
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for rbm in self.rbms:
                fan_in, fan_out = rbm.weight.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                rbm.weight.copy_(torch.rand(rbm.weight.shape, generator=gen) * 2 * bound - bound)
                rbm.hbias.zero_()
                rbm.vbias.zero_()

    def fine_tune(self, x: torch.Tensor, y: torch.Tensor, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
                  weight_decay: float = 1e-4, seed: int = 0, val: tuple[torch.Tensor, torch.Tensor] | None = None,
                  log: Logger | None = None) -> list[dict[str, Any]]:
        """Backprop through the whole stack and the softmax head (cross-entropy, Adam)."""
        for rbm in self.rbms:
            rbm.weight.requires_grad_(True)
            rbm.hbias.requires_grad_(True)
        try:
            return fit_classifier(self, x, y, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                  seed=seed, val=val, log=log)
        finally:
            for rbm in self.rbms:
                rbm.weight.requires_grad_(False)
                rbm.hbias.requires_grad_(False)
