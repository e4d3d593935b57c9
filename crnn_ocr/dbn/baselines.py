"""Baselines for the DBN: Rosenblatt's single-layer perceptron and a multilayer perceptron (MLP).

>>> import torch
>>> x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = torch.tensor([0, 1, 1, 1])  # OR
>>> p = Perceptron(2)
>>> p.fit(x, y, epochs=20)[-1]["mistakes"]
0
>>> p(x).argmax(1).tolist()
[0, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_ocr.dbn.fit import fit_classifier
from crnn_ocr.errors import ConfigError

Logger = Callable[[dict[str, Any]], None]


class Perceptron(nn.Module):
    """The single-layer perceptron with Rosenblatt's (1958) learning rule, for two classes.

    Prediction is sign(w.x + b). Training visits the samples one at a time; on a mistake it moves the
    weights towards the sample's side: w <- w + lr * t * x, b <- b + lr * t, with t = +1 for class 1 and -1
    for class 0. On linearly separable data it stops making mistakes after finitely many updates (Novikoff,
    1962). `average=True` keeps the average of the weights over all steps instead of the last ones (the
    averaged perceptron of Freund and Schapire, 1999), which behaves better on data that is not separable.

    `forward` returns two logits, (-m/2, m/2) for the margin m = w.x + b, so that softmax gives sigmoid(m)
    and argmax gives the perceptron's decision, like the other classifiers here.
    """

    def __init__(self, n_inputs: int, average: bool = False):
        super().__init__()
        if n_inputs < 1:
            raise ConfigError(f"a perceptron needs at least one input, got {n_inputs}")
        self.n_inputs, self.average = n_inputs, average
        self.weight = nn.Parameter(torch.zeros(n_inputs), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(()), requires_grad=False)

    def config(self) -> dict[str, Any]:
        return {"n_inputs": self.n_inputs, "average": self.average}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Perceptron:
        return cls(config["n_inputs"], bool(config.get("average", False)))

    def margin(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias  # (B, D) @ (D,) -> (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.margin(x)
        return torch.stack([-m / 2, m / 2], dim=1)  # (B,) -> (B, 2)

    def fit(self, x: torch.Tensor, y: torch.Tensor, epochs: int = 10, lr: float = 1.0, seed: int = 0,
            log: Logger | None = None) -> list[dict[str, Any]]:
        """Run the perceptron rule for up to `epochs` passes (stops after a pass without mistakes).

        Returns one record per pass: the epoch and the number of mistakes (updates) made in it.
        """
        if x.ndim != 2 or x.shape[1] != self.n_inputs or len(x) != len(y):
            raise ConfigError(f"perceptron with {self.n_inputs} inputs got {tuple(x.shape)} and {len(y)} labels")
        xs = x.detach().double().numpy()
        ts = np.where(y.numpy() > 0, 1.0, -1.0)
        w = self.weight.detach().double().numpy().copy()
        b = float(self.bias)
        # Averaged perceptron in O(updates): keep sum of (step * update) and subtract it at the end.
        w_acc, b_acc, step = np.zeros_like(w), 0.0, 1
        rng = np.random.default_rng(seed)
        history = []
        for epoch in range(1, epochs + 1):
            mistakes = 0
            for i in rng.permutation(len(xs)):
                if ts[i] * (xs[i] @ w + b) <= 0:  # a mistake (or on the boundary): move towards the sample
                    w += lr * ts[i] * xs[i]
                    b += lr * ts[i]
                    w_acc += step * lr * ts[i] * xs[i]
                    b_acc += step * lr * ts[i]
                    mistakes += 1
                step += 1
            record = {"epoch": epoch, "mistakes": mistakes, "error_rate": mistakes / max(len(xs), 1)}
            history.append(record)
            if log is not None:
                log(record)
            if mistakes == 0:
                break
        if self.average and step > 1:
            w, b = w - w_acc / step, b - b_acc / step
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(w).float())
            self.bias.fill_(b)
        return history


class MLP(nn.Module):
    """A feed-forward ReLU network with dropout, trained by backprop (Adam): the modern baseline.

    Args:
        sizes: [n_inputs, hidden_1, ..., hidden_L].
        n_classes: outputs.
        dropout: dropout before each hidden-to-next layer.
    """

    def __init__(self, sizes: Sequence[int], n_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"an MLP needs an input size and at least one hidden layer, got {sizes}")
        if n_classes < 2:
            raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
        self.sizes, self.n_classes, self.dropout = sizes, n_classes, float(dropout)
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(sizes[-1], n_classes))
        self.net = nn.Sequential(*layers)

    def config(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "n_classes": self.n_classes, "dropout": self.dropout}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MLP:
        return cls(config["sizes"], config.get("n_classes", 2), config.get("dropout", 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def fit(self, x: torch.Tensor, y: torch.Tensor, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
            weight_decay: float = 1e-4, seed: int = 0, val: tuple[torch.Tensor, torch.Tensor] | None = None,
            log: Logger | None = None) -> list[dict[str, Any]]:
        return fit_classifier(self, x, y, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                              seed=seed, val=val, log=log)
