"""Supervised training and scoring shared by the DBN fine-tuning and the MLP baseline.

Every classifier here maps (B, D) float32 to logits (B, n_classes); class 1 is "text" for the verifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.errors import ConfigError

Logger = Callable[[dict[str, Any]], None]


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 20, batch_size: int = 64,
                   lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0,
                   val: tuple[torch.Tensor, torch.Tensor] | None = None, log: Logger | None = None) -> list[dict[str, Any]]:
    """Minimise cross-entropy with Adam over mini-batches; returns one record per epoch (loss, accuracy).

    Only parameters with requires_grad are trained. The model is left in eval mode.
    """
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"expected inputs (N, D) and N labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    if epochs < 0 or batch_size < 1:
        raise ConfigError("epochs must be >= 0 and batch_size >= 1")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    history = []
    y = y.long()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total, correct, count = 0.0, 0, 0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            count += len(idx)
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(count, 1), "accuracy": correct / max(count, 1)}
        if val is not None:
            record["val_accuracy"] = float((predict_proba(model, val[0]).argmax(1) == val[1].numpy()).mean())
        history.append(record)
        if log is not None:
            log(record)
    model.eval()
    return history


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, n_classes) as float64 numpy."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(torch.softmax(model(x[start:start + batch_size]).double(), 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


def precision_recall(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of the positive class (1 = text) from 0/1 arrays."""
    truth = np.asarray(truth).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    tp = int((truth & predicted).sum())
    fp = int((~truth & predicted).sum())
    fn = int((truth & ~predicted).sum())
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12),
            "accuracy": float((truth == predicted).mean()) if len(truth) else 0.0,
            "tp": tp, "fp": fp, "fn": fn, "tn": int((~truth & ~predicted).sum())}


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the chance a random positive outscores a random negative; ties count half)."""
    truth = np.asarray(truth).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
