"""Restricted Boltzmann machines with binary (Bernoulli) or Gaussian visible units and binary hidden units.

Trained by contrastive divergence (CD-k, Hinton 2002) or persistent CD (PCD, Tieleman 2008), with the
update recipe of Hinton's "A Practical Guide to Training RBMs" (2010): momentum 0.5 rising to 0.9, a small
L2 weight cost, sampled hidden states while driving the chain, probabilities in the statistics.

The parameters are ordinary `nn.Parameter`s (so a DBN can fine-tune them by backprop), but RBM training
itself never uses autograd: the CD gradient is computed in closed form.

Energies (sigma = 1 for the Gaussian visible units; standardise the data first):

    Bernoulli:  E(v, h) = -v.b - h.c - v W h        F(v) = -v.b - sum_j softplus(c_j + (v W)_j)
    Gaussian:   E(v, h) = |v - b|^2 / 2 - h.c - v W h   F(v) = |v - b|^2 / 2 - sum_j softplus(c_j + (v W)_j)

>>> import torch
>>> rbm = BernoulliRBM(6, 3, seed=0)
>>> data = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]] * 32, dtype=torch.float32)
>>> history = rbm.fit(data, epochs=30, batch_size=8, lr=0.1, seed=0)
>>> history[-1]["recon_error"] < history[0]["recon_error"]
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.errors import ConfigError

Logger = Callable[[dict[str, Any]], None]


class RBM(nn.Module):
    """Base class: binary hidden units; subclasses define the visible units.

    Args:
        n_visible: number of visible units.
        n_hidden: number of hidden units.
        seed: seed of the initial weights (N(0, 0.01^2), biases 0, as in Hinton's guide).
    """

    visible_kind = "bernoulli"
    default_lr = 0.05

    def __init__(self, n_visible: int, n_hidden: int, seed: int | None = None):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ConfigError(f"an RBM needs at least one visible and one hidden unit, got {n_visible}x{n_hidden}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.weight = nn.Parameter(torch.randn(n_visible, n_hidden, generator=gen) * 0.01, requires_grad=False)
        self.vbias = nn.Parameter(torch.zeros(n_visible), requires_grad=False)
        self.hbias = nn.Parameter(torch.zeros(n_hidden), requires_grad=False)
        self._chain: torch.Tensor | None = None  # PCD fantasy particles (not saved)

    @property
    def n_visible(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    # ----- conditionals -----
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v): (B, V) -> (B, H)."""
        return torch.sigmoid(v @ self.weight + self.hbias)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: (B, H) -> (B, V)."""
        raise NotImplementedError

    def sample_visible(self, mean: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Draw v ~ p(v | h) given its mean."""
        raise NotImplementedError

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per sample, (B, V) -> (B,): p(v) is proportional to exp(-F(v))."""
        raise NotImplementedError

    def transform(self, v: torch.Tensor) -> torch.Tensor:
        """Hidden probabilities: the features a DBN feeds to the next layer."""
        return self.hidden_probs(v)

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """One mean-field pass up and down: E[v | h = p(h | v)]."""
        return self.visible_mean(self.hidden_probs(v))

    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Mean squared difference between v and its reconstruction, per visible unit."""
        with torch.no_grad():
            return float(((v - self.reconstruct(v)) ** 2).mean())

    # ----- learning -----
    def contrastive_divergence(self, v0: torch.Tensor, k: int = 1, persistent: bool = False,
                               gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The CD-k (or PCD-k) estimate of the log-likelihood gradient for a batch: (dW, dvbias, dhbias).

        CD starts the negative chain at the data and feeds visible means back (less noise); PCD continues
        the persistent chains of the previous update and samples the visible units too, so the chains are a
        proper Markov chain of the model.
        """
        if k < 1:
            raise ConfigError(f"CD needs k >= 1 Gibbs steps, got {k}")
        ph0 = self.hidden_probs(v0)
        if persistent:
            if self._chain is None or self._chain.shape[1] != v0.shape[1]:
                self._chain = v0.clone()  # start the fantasy particles at data
            v = self._chain
        else:
            v = v0
        for _ in range(k):
            h = torch.bernoulli(self.hidden_probs(v), generator=gen)
            mean = self.visible_mean(h)
            v = self.sample_visible(mean, gen) if persistent else mean
        phk = self.hidden_probs(v)
        if persistent:
            self._chain = v.detach()
        # (V, B) @ (B, H) -> (V, H): data statistics minus model statistics, averaged over each set.
        dw = v0.T @ ph0 / len(v0) - v.T @ phk / len(v)
        return dw, v0.mean(0) - v.mean(0), ph0.mean(0) - phk.mean(0)

    def reset_chains(self) -> None:
        self._chain = None

    def fit(self, data: torch.Tensor, epochs: int = 10, batch_size: int = 64, lr: float | None = None, k: int = 1,
            persistent: bool = False, momentum: float = 0.5, final_momentum: float = 0.9, momentum_switch: int = 5,
            weight_decay: float = 2e-4, val: torch.Tensor | None = None, seed: int = 0,
            log: Logger | None = None) -> list[dict[str, Any]]:
        """Train on `data` (N, V) float32 by CD-k or PCD-k; returns one record per epoch.

        Each record holds the epoch, the reconstruction error of the training data (and of `val`), the mean
        free energy of a training sample and of `val`, and their gap F(val) - F(train): a widening gap means
        overfitting (Hinton's guide, section 6). `log` is called with each record as it is made.
        """
        if data.ndim != 2 or data.shape[1] != self.n_visible:
            raise ConfigError(f"RBM with {self.n_visible} visible units got data of shape {tuple(data.shape)}")
        if epochs < 0 or batch_size < 1:
            raise ConfigError("epochs must be >= 0 and batch_size >= 1")
        lr = self.default_lr if lr is None else lr
        data = data.float()
        gen = torch.Generator().manual_seed(seed)
        vel = [torch.zeros_like(p) for p in (self.weight, self.vbias, self.hbias)]
        probe = data[torch.randperm(len(data), generator=gen)[:1000]]
        self.reset_chains()
        history = []
        with torch.no_grad():
            for epoch in range(1, epochs + 1):
                mom = momentum if epoch <= momentum_switch else final_momentum
                order = torch.randperm(len(data), generator=gen)
                for start in range(0, len(data), batch_size):
                    batch = data[order[start:start + batch_size]]
                    dw, dvb, dhb = self.contrastive_divergence(batch, k, persistent, gen)
                    dw = dw - weight_decay * self.weight
                    for p, v, g in zip((self.weight, self.vbias, self.hbias), vel, (dw, dvb, dhb)):
                        v.mul_(mom).add_(g, alpha=lr)
                        p.add_(v)
                record = self.monitor(probe, val)
                record["epoch"] = epoch
                history.append(record)
                if log is not None:
                    log(record)
        self.reset_chains()
        return history

    def monitor(self, train_sample: torch.Tensor, val: torch.Tensor | None = None) -> dict[str, Any]:
        """Reconstruction error and mean free energy of a training sample (and of `val`, with their gap)."""
        with torch.no_grad():
            record: dict[str, Any] = {"recon_error": self.reconstruction_error(train_sample),
                                      "free_energy": float(self.free_energy(train_sample).mean())}
            if val is not None and len(val):
                record["val_recon_error"] = self.reconstruction_error(val)
                record["val_free_energy"] = float(self.free_energy(val).mean())
                record["free_energy_gap"] = record["val_free_energy"] - record["free_energy"]
        return record


class BernoulliRBM(RBM):
    """Binary visible units (use with data in [0, 1], read as probabilities)."""

    visible_kind = "bernoulli"
    default_lr = 0.05

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.weight.T + self.vbias)  # (B, H) @ (H, V) -> (B, V)

    def sample_visible(self, mean: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(mean, generator=gen)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.vbias) - F.softplus(v @ self.weight + self.hbias).sum(1)


class GaussianRBM(RBM):
    """Real-valued visible units with unit variance (standardise each input to mean 0, variance 1 first).

    Gaussian-Bernoulli RBMs need a learning rate about ten times smaller than binary ones (Hinton's guide,
    section 13.2), hence the lower default.
    """

    visible_kind = "gaussian"
    default_lr = 0.005

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.weight.T + self.vbias  # (B, H) @ (H, V) -> (B, V)

    def sample_visible(self, mean: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return mean + torch.randn(mean.shape, generator=gen)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((v - self.vbias) ** 2).sum(1) - F.softplus(v @ self.weight + self.hbias).sum(1)


RBM_KINDS: dict[str, type[RBM]] = {"bernoulli": BernoulliRBM, "gaussian": GaussianRBM}


def make_rbm(visible: str, n_visible: int, n_hidden: int, seed: int | None = None) -> RBM:
    """An RBM with `visible` ("bernoulli" or "gaussian") visible units."""
    try:
        cls = RBM_KINDS[visible]
    except KeyError:
        raise ConfigError(f"unknown visible unit kind {visible!r}; expected one of {', '.join(RBM_KINDS)}") from None
    return cls(n_visible, n_hidden, seed=seed)
