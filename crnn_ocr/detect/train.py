"""Training a DB text detector on a CPU (or GPU): `train_detector(config)`, and a plain entry point.

    python -m crnn_ocr.detect.train --config data/recipes/detector.toml [--resume] [--threads N] [--steps N]

Files in the run's `out` folder: `last.pt` (everything needed to continue exactly: weights, optimiser,
scheduler position, step, RNG state, config; overwritten atomically every `checkpoint_every` steps and on
SIGTERM / Ctrl-C), `best.pt` (the best validation hmean so far: the mean over the complete held-out sets, or one
set's with `select_by = "folder/level"`) and `log.csv`. Checkpoints are `{"format": "crnn_ocr.detector/1", "arch",
"config", "state_dict", "train_state"}`, loadable with `torch.load(weights_only=True)`.

Loss (Liao et al. 2020): BCE with 3:1 hard-negative mining on the probability map, dice on the approximate binary
map 1 / (1 + exp(-50 (P - T))), L1 on the threshold map, weighted 1 / 1 / 10, per level channel, only where the
sample supervises that level and outside don't-care regions.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.detect.config import DetectTrainConfig, SceneSource, expand_sources
from crnn_ocr.detect.data import DetectionDataset, SceneFolder, open_scene_folder, open_training_folders
from crnn_ocr.detect.evaluate import TorchDetector, evaluate_detector, score_images
from crnn_ocr.detect.nets import (
    OUTPUT_STRIDE,
    count_parameters,
    create_detector,
    detector_from_checkpoint,
    load_detector_checkpoint,
    save_detector,
)
from crnn_ocr.errors import ConfigError, OcrError
from crnn_ocr.train.allocator import ALLOCATORS, restart_with_jemalloc, use_allocator
from crnn_ocr.train.loop import Dist, StopRequest, TrainResult, loader_worker_init, resolve_device, stop_loader_workers

BINARY_K = 50.0  # DB's amplifying factor of the approximate step function
LOG_FIELDS = ["step", "lr", "loss", "bce", "dice", "l1", "images_per_s", "elapsed_s", "val_hmean", "val_precision",
              "val_recall"]

__all__ = ["DetectTrainResult", "db_loss", "evaluate_detector", "lr_at", "main", "train_detector", "validate"]


def lr_at(step: int, cfg: DetectTrainConfig) -> float:
    """Linear warm-up, then cosine to lr * min_lr_ratio, or DB's poly decay (1 - progress) ** poly_power."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "poly":
        return floor + (cfg.lr - floor) * (1 - progress) ** cfg.poly_power
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def db_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg: DetectTrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """DB loss of logits (B, 2L, H/4, W/4) against the batch's targets at 1/`cfg.loss_stride` resolution.

    Returns:
        The loss (summed over the level channels supervised anywhere in the batch) and its parts as floats.
    """
    levels = logits.shape[1] // 2
    if cfg.loss_stride != OUTPUT_STRIDE:
        logits = F.interpolate(logits.float(), scale_factor=float(OUTPUT_STRIDE // cfg.loss_stride), mode="bilinear",
                               align_corners=False)
    gt, mask = batch["shrink"], batch["shrink_mask"]
    if logits.shape[-2:] != gt.shape[-2:]:
        raise ConfigError(f"targets {tuple(gt.shape[-2:])} do not match the logits {tuple(logits.shape[-2:])}; "
                          "loss_stride and the dataset disagree")
    p_logit, t_logit = logits[:, :levels], logits[:, levels:]
    bce_map = F.binary_cross_entropy_with_logits(p_logit, gt, reduction="none")
    binary = torch.sigmoid(BINARY_K * (torch.sigmoid(p_logit) - torch.sigmoid(t_logit)))
    total = logits.new_zeros(())
    parts = {"bce": 0.0, "dice": 0.0, "l1": 0.0}
    for c in range(levels):
        m = mask[:, c]
        if float(m.sum()) == 0:  # no sample of this batch supervises this level
            continue
        g = gt[:, c]
        pos, neg = g * m, (1 - g) * m
        n_pos = int(pos.sum())
        n_neg = int(min(float(neg.sum()), max(cfg.ohem_ratio * n_pos, cfg.min_negatives)))
        hard = torch.topk((bce_map[:, c] * neg).flatten(), n_neg).values if n_neg > 0 else bce_map.new_zeros(0)
        bce = ((bce_map[:, c] * pos).sum() + hard.sum()) / (n_pos + n_neg + 1e-6)
        b = binary[:, c]
        dice = 1 - 2 * (b * g * m).sum() / ((b * m).sum() + (g * m).sum() + 1e-6)
        tm = batch["thresh_mask"][:, c]
        l1 = ((torch.sigmoid(t_logit[:, c]) - batch["thresh"][:, c]).abs() * tm).sum() / (tm.sum() + 1e-6)
        total = total + cfg.bce_weight * bce + cfg.dice_weight * dice + cfg.l1_weight * l1
        parts["bce"] += float(bce.detach())
        parts["dice"] += float(dice.detach())
        parts["l1"] += float(l1.detach())
    return total, parts


def validation_folders(cfg: DetectTrainConfig, folders: list[SceneFolder], log=print) -> list[SceneFolder]:
    """Held-out images of the training sources, plus whole `val` folders."""
    out = [f for f in folders if f.held]
    for path in cfg.val:
        if not (Path(path) / "labels.jsonl").is_file():
            log(f"warning: skipping validation folder {path}: no labels.jsonl")
            continue
        folder = open_scene_folder(SceneSource(path))
        out.append(SceneFolder(folder.source, [], folder.images, folder.levels))
    return out


def validate(model: nn.Module, folders: list[SceneFolder], cfg: DetectTrainConfig) -> dict[str, Any]:
    """Score the model on the validation images: per folder and level P / R / hmean (IoU 0.5); the run's figure
    is the mean hmean over complete folders (incomplete ones, like SVT, give recall only)."""
    was_training = model.training
    detector = TorchDetector(model, cfg.model, cfg.val_max_side or None)
    sets, hmeans, precisions, recalls = {}, [], [], []
    try:
        for folder in folders:
            levels = [lv for lv in folder.levels if lv in cfg.model.levels]
            result = score_images(detector, folder.held, levels, 0.5, cfg.val_limit)
            for lv, r in result["levels"].items():
                key = f"{folder.name}/{lv}"
                if folder.source.complete:
                    sets[key] = {k: r[k] for k in ("precision", "recall", "hmean")}
                    hmeans.append(r["hmean"])
                    precisions.append(r["precision"])
                else:
                    sets[key] = {"recall": r["recall"]}
                recalls.append(r["recall"])
    finally:
        model.train(was_training)
    score = float(np.mean(hmeans)) if hmeans else float(np.mean(recalls)) if recalls else 0.0
    return {"hmean": score, "precision": float(np.mean(precisions)) if precisions else float("nan"),
            "recall": float(np.mean(recalls)) if recalls else float("nan"), "sets": sets}


def selection_keys(folders: list[SceneFolder], cfg: DetectTrainConfig) -> list[str]:
    """The "folder/level" names `select_by` may take: complete held-out sets and the levels they label."""
    return [f"{f.name}/{lv}" for f in folders if f.source.complete for lv in f.levels if lv in cfg.model.levels]


def selection_score(scores: dict[str, Any], cfg: DetectTrainConfig) -> float:
    """The figure best.pt is chosen by: the mean hmean, or the hmean of the one set `select_by` names."""
    return scores["hmean"] if cfg.select_by == "mean" else scores["sets"][cfg.select_by]["hmean"]


DetectTrainResult = TrainResult  # the same record as the recogniser's run: out, step, best, history, report, stopped


def _load_resume(cfg: DetectTrainConfig, last_path: Path, log) -> tuple[nn.Module, DetectTrainConfig, dict[str, Any]]:
    data = load_detector_checkpoint(last_path)
    saved = dict(data["config"])
    if saved.get("arch") != cfg.model.arch:
        raise ConfigError(f"{last_path} is a {saved.get('arch')} run; this config asks for {cfg.model.arch}. "
                          "Use another `out` folder, or the same arch to continue")
    if tuple(saved.get("levels", ())) != tuple(cfg.model.levels):
        raise ConfigError(f"{last_path} predicts levels {saved.get('levels')}; this config asks for {list(cfg.model.levels)}")
    model, model_cfg = detector_from_checkpoint(data, last_path)
    if model_cfg != cfg.model:
        log(f"note: continuing with the model settings stored in {last_path} (they differ from the config's)")
    return model, dataclasses.replace(cfg, model=model_cfg), dict(data.get("train_state") or {})


def train_detector(config: DetectTrainConfig | str | Path, resume: bool = False, log=print,
                   stop_after: int | None = None, overrides: dict[str, Any] | None = None) -> DetectTrainResult:
    """Train (or continue) a detector; files go to `config.out`.

    Args:
        config: a DetectTrainConfig, or a TOML file (see data/recipes/detector.toml).
        resume: continue from `out/last.pt` when it exists. Without it an existing last.pt is an error (a run is
            never overwritten by accident); resuming refuses a different arch or level set (ConfigError).
        log: where progress lines go.
        stop_after: end this sitting at that step (checkpointed) without changing the schedule.
        overrides: config values that win over the file's (e.g. {"steps": 100, "threads": 2}).

    Returns:
        The out folder, final step, best validation, history, a report (parameters, sources) and why it stopped.

    >>> # train_detector("data/recipes/detector.toml", resume=True, overrides={"threads": 2})
    """
    if not isinstance(config, DetectTrainConfig):
        config = DetectTrainConfig.from_file(config, overrides)
    elif overrides:
        config = DetectTrainConfig.from_dict({**config.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
    cfg = config
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.csv"
    if last_path.exists() and not resume:
        raise ConfigError(f"{last_path} exists: continue it with --resume (resume=True), or choose another `out`")

    torch.manual_seed(cfg.seed)
    ts: dict[str, Any] = {}
    if resume and last_path.exists():
        model, cfg, ts = _load_resume(cfg, last_path, log)
    else:
        model = create_detector(cfg.model)
        if cfg.init:
            init_model, _ = detector_from_checkpoint(load_detector_checkpoint(cfg.init), cfg.init)
            if init_model.cfg.arch != cfg.model.arch:
                raise ConfigError(f"init {cfg.init} is a {init_model.cfg.arch}; this config asks for {cfg.model.arch}")
            model.load_state_dict(init_model.state_dict())
    sources = expand_sources(cfg.data, log)
    if not sources:
        raise ConfigError("no training data: none of the data sources exists")
    folders = open_training_folders(sources, cfg.model, log)
    dataset = DetectionDataset(folders, cfg)
    val_folders = validation_folders(cfg, folders, log)
    if cfg.select_by != "mean" and cfg.select_by not in selection_keys(val_folders, cfg):
        raise ConfigError(f"select_by {cfg.select_by!r} names no complete held-out set; choose mean or one of: "
                          + ", ".join(selection_keys(val_folders, cfg) or ["(no held-out images)"]))
    report = {"parameters": count_parameters(model), "arch": cfg.model.arch,
              "sources": {f.source.path: {"images": len(f.images), "held_out": len(f.held), "levels": f.levels,
                                          "weight": round(float(p), 4), "complete": f.source.complete}
                          for f, p in zip(dataset.folders, dataset.probs)}}

    device = torch.device(resolve_device(cfg.device, Dist()))
    model = model.to(device, memory_format=torch.channels_last)  # measured: about 1.2x faster convs on CPU
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    step = 0
    best: dict[str, Any] = {"hmean": -1.0, "step": -1}
    history: list[dict] = []
    if ts:
        optimizer.load_state_dict(ts["optimizer"])
        step, best, history = int(ts["step"]), dict(ts["best"]), list(ts["history"])
        torch.set_rng_state(ts["rng_torch"])
        log(f"resuming {last_path} at step {step}")
    end = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps

    def save(path: Path) -> None:
        state: dict[str, Any] = {"step": step, "best": best, "history": history, "config": cfg.to_dict()}
        if path == last_path:  # only the resume file carries what continuing needs; best.pt stays small
            state.update(optimizer=optimizer.state_dict(), rng_torch=torch.get_rng_state(),
                         scheduler={"schedule": cfg.schedule, "step": step, "lr": lr_at(step, cfg)})
        save_detector(path, model, cfg.model, state)

    if cfg.workers:
        import cv2

        # OpenCV's thread pool does not survive fork: a worker forked from a process whose pool has run can hang in
        # its first cv2 call (seen: pthread_cond_destroy). One thread in this process means no pool to inherit.
        cv2.setNumThreads(1)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=[list(range(s * cfg.batch_size, (s + 1) * cfg.batch_size)) for s in range(step, end)],
        num_workers=cfg.workers, worker_init_fn=loader_worker_init if cfg.workers else None,
        prefetch_factor=2 if cfg.workers else None, persistent_workers=False, pin_memory=device.type == "cuda")

    out.mkdir(parents=True, exist_ok=True)
    new_log = step == 0 or not log_path.exists()
    log_file = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.DictWriter(log_file, LOG_FIELDS)
    if new_log:
        writer.writeheader()
    log(f"training {cfg.model.arch} ({report['parameters']:,} parameters) on {device} from step {step} to {cfg.steps} on "
        + ", ".join(f"{Path(k).name} ({v['images']} images, p={v['weight']})" for k, v in report["sources"].items()))
    model.train()
    started = time.time()
    window = {"loss": 0.0, "bce": 0.0, "dice": 0.0, "l1": 0.0, "n": 0, "images": 0, "time": time.time()}
    stopped = ""
    stop_request = StopRequest().install()
    batches = iter(loader)
    try:
        for batch in batches:
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            images = batch["image"].contiguous(memory_format=torch.channels_last)
            loss, parts = db_loss(model(images), batch, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            window["loss"] += float(loss.detach())
            for k, v in parts.items():
                window[k] += v
            window["n"] += 1
            window["images"] += len(images)

            at_log = step % cfg.log_every == 0 or step == cfg.steps
            at_val = bool(val_folders) and (step % cfg.val_every == 0 or step == cfg.steps)
            over_time = cfg.max_minutes > 0 and time.time() - started > cfg.max_minutes * 60
            signalled = bool(stop_request.signal)
            row: dict[str, Any] | None = None
            if at_log or at_val or over_time or signalled:
                n = max(window["n"], 1)
                row = {"step": step, "lr": f"{lr:.3g}", "loss": f"{window['loss'] / n:.4f}", "bce": f"{window['bce'] / n:.4f}",
                       "dice": f"{window['dice'] / n:.4f}", "l1": f"{window['l1'] / n:.4f}",
                       "images_per_s": f"{window['images'] / max(time.time() - window['time'], 1e-9):.2f}",
                       "elapsed_s": f"{time.time() - started:.0f}"}
                log(f"step {step}: loss {row['loss']} (bce {row['bce']} dice {row['dice']} l1 {row['l1']}) "
                    f"lr {row['lr']} {row['images_per_s']} images/s")
                window.update(loss=0.0, bce=0.0, dice=0.0, l1=0.0, n=0, images=0, time=time.time())
            if at_val:
                scores = validate(model, val_folders, cfg)
                history.append({"step": step, **scores})
                row = row or {"step": step}
                row.update(val_hmean=f"{scores['hmean']:.4f}", val_precision=f"{scores['precision']:.4f}",
                           val_recall=f"{scores['recall']:.4f}")
                log(f"step {step}: validation hmean {scores['hmean']:.4f} " + " ".join(
                    f"{k}={v.get('hmean', v['recall']):.3f}" for k, v in scores["sets"].items()))
                if selection_score(scores, cfg) > best["hmean"]:
                    best = {"hmean": selection_score(scores, cfg), "step": step, "by": cfg.select_by}
                    save(best_path)
            if row is not None:
                writer.writerow(row)
                log_file.flush()
            if over_time:
                stopped = f"time limit of {cfg.max_minutes} minutes reached"
            if signalled:
                stopped = stopped or f"stopped by {stop_request.signal} after step {step}"
            if step % cfg.checkpoint_every == 0 or step == end or stopped:
                save(last_path)
            if stopped:
                break
        if not stopped and step < cfg.steps:
            stopped = f"stopped after step {step} as asked"
    except KeyboardInterrupt:
        save(last_path)
        log(f"interrupted: saved {last_path} at step {step}; continue with --resume")
        raise
    finally:
        stop_loader_workers(batches)
        stop_request.restore()
        log_file.close()
    if stopped:
        log(f"{stopped}: saved {last_path}; continue with --resume")
    if not val_folders and step == cfg.steps:
        save(best_path)
    return DetectTrainResult(str(out), step, best, history, report, stopped)


def main(argv: list[str] | None = None) -> int:
    """`python -m crnn_ocr.detect.train --config FILE [--resume] [--threads N] [--steps N] [--out DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m crnn_ocr.detect.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="TOML training config (see data/recipes/detector.toml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--threads", type=int, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--steps", type=int, help="total steps of the schedule")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--workers", type=int, help="data loader processes (0: in the training process)")
    parser.add_argument("--max-minutes", type=float, dest="max_minutes", help="end this sitting after so long")
    parser.add_argument("--allocator", choices=ALLOCATORS, default="auto",
                        help="memory allocator (as `ocr train --allocator`; auto: jemalloc when installed)")
    args = parser.parse_args(argv)
    if argv is None:
        restart_with_jemalloc(args.allocator)
    overrides = {k: getattr(args, k) for k in ("threads", "steps", "out", "workers", "max_minutes")}
    try:
        use_allocator(args.allocator)
        result = train_detector(args.config, resume=args.resume, overrides=overrides)
    except OcrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    best = (f"best validation hmean ({result.best.get('by', 'mean')}) {result.best['hmean']:.4f} at step {result.best['step']}: {result.out}/best.pt"
            if result.best.get("step", -1) >= 0 else f"no validation yet; weights in {result.out}/last.pt")
    print(f"{'stopped' if result.stopped else 'done'} at step {result.step}; {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
