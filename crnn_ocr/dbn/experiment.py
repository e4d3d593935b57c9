"""Training the text verifier, and the held-out comparison of DBN, random-init network, perceptron and MLP.

`train_verifier(recipe)` makes the data, trains one model and returns a `TextVerifier` (with its threshold
chosen on a validation split). `compare_models(recipe)` trains every model on the same data and scores them
on a held-out test split: different renders (another seed) and real crops of another hash split.

>>> # verifier, report = train_verifier(Recipe(n_text=400, n_clutter=400))
>>> # verifier.save("weights/text_verifier.pt")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn_ocr.dbn.baselines import MLP, Perceptron
from crnn_ocr.dbn.data import PatchSet, make_patches
from crnn_ocr.dbn.dbn import DBN
from crnn_ocr.dbn.fit import precision_recall, predict_proba, roc_auc
from crnn_ocr.dbn.verifier import PATCH_HEIGHT, PATCH_WIDTH, TextVerifier
from crnn_ocr.errors import ConfigError

Logger = Callable[[str], None]
MODELS = ("dbn", "dbn_random", "perceptron", "mlp")
SPLIT_SEED = {"train": 0, "val": 1_000_003, "test": 2_000_003}


@dataclass
class Recipe:
    """What to train on and how. Plain values, saved with the verifier.

    Attributes:
        n_text, n_clutter: training patches of each class (the validation and test sets are a quarter as big
            unless given).
        real_share: share of the text patches taken from real crops in `real_folders` (when any).
        hidden: hidden layer widths (DBN, random-init network and MLP alike).
        visible: first RBM's visible units, "bernoulli" or "gaussian".
        pretrain_epochs, k, persistent, rbm_lr: RBM pretraining (CD-k, or PCD-k when persistent).
        finetune_epochs, lr, batch_size: backprop (Adam) for the DBN, the random-init network and the MLP.
        perceptron_epochs: passes of the perceptron rule.
        target_recall: the threshold is the highest that keeps this share of validation text (at most 0.5).
        seed: data and initialisation seed.
    """

    n_text: int = 8000
    n_clutter: int = 8000
    n_val: int = 0
    real_share: float = 0.5
    real_folders: list[str] = field(default_factory=list)
    font_dirs: list[str] = field(default_factory=list)
    hidden: list[int] = field(default_factory=lambda: [256, 64])
    visible: str = "bernoulli"
    pretrain_epochs: int = 10
    k: int = 1
    persistent: bool = False
    rbm_lr: float | None = None
    finetune_epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    perceptron_epochs: int = 10
    target_recall: float = 0.98
    height: int = PATCH_HEIGHT
    width: int = PATCH_WIDTH
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_text < 1 or self.n_clutter < 1:
            raise ConfigError("n_text and n_clutter must be >= 1")
        if not 0.0 <= self.real_share <= 1.0:
            raise ConfigError(f"real_share must be in [0, 1], got {self.real_share}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden must list at least one layer width >= 1, got {self.hidden}")
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError(f"target_recall must be in (0, 1], got {self.target_recall}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_split(recipe: Recipe, split: str, n_text: int | None = None, n_clutter: int | None = None,
               fonts=None, keep_crops: bool = False) -> PatchSet:
    """The patches of one split; a different seed per split, so renders never repeat across them."""
    return make_patches(n_text or recipe.n_text, n_clutter or recipe.n_clutter, seed=recipe.seed + SPLIT_SEED[split],
                        real_folders=recipe.real_folders, real_share=recipe.real_share, split=split,
                        font_dirs=recipe.font_dirs or None, height=recipe.height, width=recipe.width, fonts=fonts,
                        keep_crops=keep_crops)


def build_model(kind: str, recipe: Recipe, train: PatchSet, log: Logger | None = None, monitor: PatchSet | None = None):
    """Train one model on `train`: "dbn" (pretrained + fine-tuned), "dbn_random" (same network, same
    fine-tuning, Glorot init instead of pretraining), "perceptron" (Rosenblatt rule) or "mlp" (ReLU,
    dropout, Adam). Returns (model, the verifier kind, a record of training).

    `monitor` (held-out patches) is used only to log the RBMs' free-energy gap while pretraining."""
    x = torch.from_numpy(train.x)
    y = torch.from_numpy(train.y)
    sizes = [x.shape[1], *recipe.hidden]
    say = log or (lambda _m: None)
    t = time.process_time()
    record: dict[str, Any] = {}
    torch.manual_seed(recipe.seed)
    if kind in ("dbn", "dbn_random"):
        model: Any = DBN(sizes, 2, recipe.visible, seed=recipe.seed)
        if kind == "dbn":
            def rbm_log(r: dict[str, Any]) -> None:
                say(f"  rbm {r['layer']} epoch {r['epoch']}: recon error {r['recon_error']:.4f}, "
                    f"free energy {r['free_energy']:.2f}" + (f", val gap {r['free_energy_gap']:+.2f}" if "free_energy_gap" in r else ""))

            hist = model.pretrain(x, epochs=recipe.pretrain_epochs, batch_size=recipe.batch_size, lr=recipe.rbm_lr,
                                  k=recipe.k, persistent=recipe.persistent, seed=recipe.seed, log=rbm_log,
                                  val=torch.from_numpy(monitor.x[:1000]) if monitor is not None else None)
            record["pretrain"] = [{"layer": i + 1, "first": h[0], "last": h[-1]} for i, h in enumerate(hist) if h]
            record["pretrain_cpu_s"] = round(time.process_time() - t, 1)
        else:
            model.random_init(recipe.seed)
        hist = model.fine_tune(x, y, epochs=recipe.finetune_epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                               seed=recipe.seed, log=lambda r: say(f"  fine-tune epoch {r['epoch']}: loss {r['loss']:.4f}, "
                                                                      f"accuracy {r['accuracy']:.4f}"))
        record["final_loss"] = hist[-1]["loss"] if hist else None
        verifier_kind = "dbn"
    elif kind == "mlp":
        model = MLP(sizes, 2)
        hist = model.fit(x, y, epochs=recipe.finetune_epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                         log=lambda r: say(f"  mlp epoch {r['epoch']}: loss {r['loss']:.4f}, accuracy {r['accuracy']:.4f}"))
        record["final_loss"] = hist[-1]["loss"] if hist else None
        verifier_kind = "mlp"
    elif kind == "perceptron":
        model = Perceptron(x.shape[1])
        hist = model.fit(x, y, epochs=recipe.perceptron_epochs, seed=recipe.seed,
                         log=lambda r: say(f"  perceptron pass {r['epoch']}: {r['mistakes']} mistakes"))
        record["mistakes_last_pass"] = hist[-1]["mistakes"] if hist else None
        verifier_kind = "perceptron"
    else:
        raise ConfigError(f"unknown model {kind!r}; expected one of {', '.join(MODELS)}")
    record["train_cpu_s"] = round(time.process_time() - t, 1)
    model.eval()
    return model, verifier_kind, record


def choose_threshold(scores: np.ndarray, truth: np.ndarray, target_recall: float, cap: float = 0.5) -> float:
    """The highest threshold (at most `cap`) that keeps at least `target_recall` of the positives."""
    pos = np.sort(np.asarray(scores)[np.asarray(truth) == 1])
    if len(pos) == 0:
        return cap
    # Keeping scores >= t: with t = pos[i], len(pos) - i positives are kept.
    i = int(np.floor((1.0 - target_recall) * len(pos) + 1e-9))
    return float(min(cap, pos[min(i, len(pos) - 1)]))


def evaluate(verifier: TextVerifier, data: PatchSet, threshold: float | None = None) -> dict[str, Any]:
    """Precision and recall (text = positive) on patches, and on whole crops when `data` keeps them, with the
    share kept of each source (recall for text sources, false-keep rate for each clutter kind)."""
    t = verifier.threshold if threshold is None else threshold
    out: dict[str, Any] = {"threshold": t}
    patch_scores = predict_proba(verifier.model, torch.from_numpy(data.x))[:, 1]
    out["patch"] = precision_recall(data.y, patch_scores >= t)
    out["patch"]["auc"] = roc_auc(data.y, patch_scores)
    if data.crops:
        crop_scores = verifier.scores(data.crops)
        kept = crop_scores >= t
        out["crop"] = precision_recall(data.y, kept)
        out["crop"]["auc"] = roc_auc(data.y, crop_scores)
        by = {}
        for s in sorted(set(data.source)):
            mask = np.array([x == s for x in data.source])
            by[s] = round(float(kept[mask].mean()), 4)
        out["kept_by_source"] = by
    return out


def train_verifier(recipe: Recipe, kind: str = "dbn", log: Logger | None = None,
                   fonts=None) -> tuple[TextVerifier, dict[str, Any]]:
    """Make the data, train one model and wrap it as a `TextVerifier` with a validated threshold."""
    say = log or (lambda _m: None)
    t0 = time.process_time()
    train = make_split(recipe, "train", fonts=fonts)
    say(f"training patches: {len(train)} {train.counts()} ({time.process_time() - t0:.0f} CPU s)")
    n_val = recipe.n_val or max(50, recipe.n_text // 4)
    val = make_split(recipe, "val", n_val, n_val, fonts=fonts, keep_crops=True)
    say(f"validation crops: {len(val)}")
    model, vkind, record = build_model(kind, recipe, train, log=say, monitor=val)
    verifier = TextVerifier(model, vkind, 0.5, recipe.height, recipe.width)
    val_scores = verifier.scores(val.crops)
    verifier.threshold = choose_threshold(val_scores, val.y, recipe.target_recall)
    report = {"model": kind, "recipe": recipe.to_dict(), "training": record, "train_counts": train.counts(),
              "validation": evaluate(verifier, val), "cpu_seconds": round(time.process_time() - t0, 1)}
    verifier.info = {"model": kind, "recipe": _plain(recipe.to_dict()), "threshold_rule":
                     f"highest <= 0.5 keeping {recipe.target_recall:.0%} of validation text crops",
                     "validation": _plain(report["validation"]), "cpu_seconds": report["cpu_seconds"]}
    return verifier, report


def compare_models(recipe: Recipe, models: Sequence[str] = MODELS, n_test: int = 0, log: Logger | None = None,
                   fonts=None, saved: str | Path | None = None) -> dict[str, Any]:
    """Train each model on the same training patches; score each on the same held-out test crops.

    Every model is scored at threshold 0.5 (its own decision rule) and at a threshold chosen on the
    validation split for `recipe.target_recall`, as `train_verifier` does. A `saved` verifier file is
    scored on the same test crops too (at 0.5 and at its own threshold).
    """
    say = log or (lambda _m: None)
    t0 = time.process_time()
    train = make_split(recipe, "train", fonts=fonts)
    n_val = recipe.n_val or max(50, recipe.n_text // 4)
    val = make_split(recipe, "val", n_val, n_val, fonts=fonts, keep_crops=True)
    n_test = n_test or max(50, recipe.n_text // 4)
    test = make_split(recipe, "test", n_test, n_test, fonts=fonts, keep_crops=True)
    say(f"train {len(train)} {train.counts()}; val {len(val)}; test {len(test)} {test.counts()} "
        f"({time.process_time() - t0:.0f} CPU s)")
    results = {}
    for kind in models:
        say(f"{kind}:")
        model, vkind, record = build_model(kind, recipe, train, log=say, monitor=val)
        verifier = TextVerifier(model, vkind, 0.5, recipe.height, recipe.width)
        tuned = choose_threshold(verifier.scores(val.crops), val.y, recipe.target_recall)
        results[kind] = {"training": record, "at_0.5": evaluate(verifier, test, 0.5),
                         "at_val_threshold": evaluate(verifier, test, tuned)}
        r = results[kind]["at_0.5"]["crop"]
        say(f"  test crops @0.5: precision {r['precision']:.3f} recall {r['recall']:.3f}")
    if saved is not None:
        verifier = TextVerifier.load(saved)
        results[f"saved {Path(saved).name}"] = {"training": {}, "at_0.5": evaluate(verifier, test, 0.5),
                                                "at_val_threshold": evaluate(verifier, test)}
    return {"recipe": recipe.to_dict(), "train_counts": train.counts(), "test_counts": test.counts(),
            "results": results, "cpu_seconds": round(time.process_time() - t0, 1)}


def _plain(value: Any) -> Any:
    """Only str/int/float/bool/None/list/dict (so a weights_only load accepts it)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
