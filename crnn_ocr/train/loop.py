"""The training loop: mixed data, AdamW with warm-up and cosine/one-cycle decay, CTC, validation, atomic
best/last checkpoints, exact resume, early stop, mixed precision on CUDA and DistributedDataParallel.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.config import TrainConfig
from crnn_ocr.datasets.sources import open_source
from crnn_ocr.errors import CheckpointError, ConfigError
from crnn_ocr.models import create_model
from crnn_ocr.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, unwrap
from crnn_ocr.recognize.base import TextRecognizer
from crnn_ocr.text.vocab import DEFAULT_CHARSET, Vocab
from crnn_ocr.train.data import SYNTH, Collate, StepSampler, TrainDataset, open_training_sources
from crnn_ocr.train.evaluate import dataset_name, evaluate_source

LOG_FIELDS = ["step", "lr", "loss", "images_per_s", "skipped_too_long", "skipped_corrupt", "val_accuracy",
              "val_cer", "elapsed_s"]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, dist: Dist) -> str:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device cuda asked for, but torch sees no CUDA GPU")
        if name == "cuda":
            name = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(torch.device(name))
    return name


def resolve_precision(precision: str, device: str) -> torch.dtype | None:
    """None means fp32. On CUDA 'auto' picks bf16 where supported, else fp16 (with loss scaling)."""
    if not device.startswith("cuda") or precision == "fp32":
        if precision in ("bf16", "fp16") and not device.startswith("cuda"):
            raise ConfigError(f"precision {precision} needs a CUDA device; use fp32 or auto on CPU")
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for `step`: linear warm-up, then cosine or one-cycle (cosine down from the peak) decay."""
    floor = cfg.lr * cfg.min_lr_ratio
    warmup = cfg.warmup_steps if cfg.schedule != "onecycle" else max(cfg.warmup_steps, int(0.3 * cfg.steps))
    if step < warmup:
        start = floor if cfg.schedule == "onecycle" else 0.0
        return start + (cfg.lr - start) * (step + 1) / warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def resolve_vocab(cfg: TrainConfig, init: dict | None) -> Vocab | None:
    """From the config, else the init model's, else 'default' charset; None means: derive from the data."""
    if cfg.vocab_file:
        return Vocab.from_file(cfg.vocab_file)
    if cfg.vocab == "default":
        return Vocab(DEFAULT_CHARSET)
    if cfg.vocab:
        return Vocab(cfg.vocab)
    if init is not None:
        return Vocab(init["vocab"])
    if any(s.path == SYNTH for s in cfg.train):
        return Vocab(DEFAULT_CHARSET)
    return None


def transfer_weights(model: nn.Module, init: dict, new_vocab: Vocab, path: str) -> dict:
    """Load `init` weights into `model`; for a changed vocabulary keep the rows of shared characters."""
    old_model, _, old_vocab = model_from_checkpoint(init, path)
    state = old_model.state_dict()
    target = model.state_dict()
    kept = 0
    for name, tensor in state.items():
        if name.startswith("head."):
            continue
        if name not in target or target[name].shape != tensor.shape:
            raise CheckpointError(f"{path}: layer {name} does not fit the new model")
        target[name] = tensor
    old_index = {c: i + 1 for i, c in enumerate(old_vocab.chars)}
    rows = [0] + [old_index.get(c, -1) for c in new_vocab.chars]
    for name in ("head.weight", "head.bias"):
        new, old = target[name].clone(), state[name]
        for new_row, old_row in enumerate(rows):
            if old_row >= 0:
                new[new_row] = old[old_row]
        target[name] = new
    kept = sum(1 for r in rows[1:] if r >= 0)
    model.load_state_dict(target)
    return {"shared_chars": kept, "new_chars": len(new_vocab) - kept}


@dataclass
class TrainResult:
    out: str
    step: int
    best: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    stopped: str = ""


class StopRequest:
    """SIGTERM (and SIGINT, where it is not ignored) ask training to stop after the current step, save and return,
    so that `kill`, a scheduler's preemption or Ctrl-C lose nothing and resume exactly. A second signal
    interrupts at once (KeyboardInterrupt; last.pt is then saved too, maybe mid-step)."""

    def __init__(self) -> None:
        self.signal: str = ""
        self._previous: dict = {}

    def install(self) -> StopRequest:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        import signal

        if self.signal:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def restore(self) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(cfg: TrainConfig, progress: bool = True, resume: bool = True, log=print,
          stop_after: int | None = None) -> TrainResult:
    """Run (or continue) a training run described by `cfg`; files go to `cfg.out`.

    If `cfg.out/last.pt` exists and `resume` is true, training continues exactly where it stopped.
    `stop_after` ends this sitting at that step (checkpointed) without changing the schedule, as does
    Ctrl-C: the run continues later from last.pt.

    >>> # train(TrainConfig(train=[DataSource("data/train.lmdb")], steps=1000, out="runs/a"))
    """
    if not cfg.train:
        raise ConfigError("no training data: give at least one --train source")
    dist = setup_distributed(cfg.device)
    device = resolve_device(cfg.device, dist)
    amp_dtype = resolve_precision(cfg.precision, device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    resume_state = load_checkpoint(last_path) if resume and last_path.exists() else None
    init = load_checkpoint(cfg.init) if cfg.init and resume_state is None else None

    if resume_state is not None:
        model, model_cfg, vocab = model_from_checkpoint(resume_state, last_path)
        ts = resume_state["train_state"]
    else:
        vocab = resolve_vocab(cfg, init)
        ts = {}
    entries, report = open_training_sources(cfg.train, vocab)
    if vocab is None:
        vocab = Vocab.from_texts(t for e in entries for t in (e.source.label(int(i)) for i in e.valid))
    if resume_state is None:
        model_cfg = cfg.model
        if init is not None:
            from crnn_ocr.config import ModelConfig

            model_cfg = ModelConfig.from_dict(dict(init["config"]))
        model = create_model(model_cfg, vocab.num_classes)
        if init is not None:
            report["init"] = {"from": cfg.init, **transfer_weights(model, init, vocab, cfg.init)}
    model.to(device)
    if cfg.freeze_cnn:
        for p in unwrap(model).cnn.parameters():
            p.requires_grad_(False)
    report["parameters"] = sum(p.numel() for p in model.parameters())
    report["vocab_size"] = len(vocab)

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    step = 0
    best = {"accuracy": -1.0, "cer": math.inf, "step": -1}
    bad_evals, history = 0, []
    if ts:
        optimizer.load_state_dict(ts["optimizer"])
        if "scaler" in ts and scaler.is_enabled():
            scaler.load_state_dict(ts["scaler"])
        step, best, bad_evals, history = ts["step"], dict(ts["best"]), ts["bad_evals"], list(ts["history"])
        log(f"resuming {last_path} at step {step}")

    if dist.world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)
    val_sources = [(dataset_name(p), open_source(p)) for p in cfg.val] if dist.main else []

    gan_filter = None
    if cfg.gan and cfg.gan_prob > 0:
        from crnn_ocr.gan import make_sample_filter  # the core reaches the GAN only when a run asks for it

        gan_filter = make_sample_filter(cfg.gan, cfg.gan_prob, cfg.seed)
        report["gan"] = {"generator": cfg.gan, "probability": cfg.gan_prob,
                         "sources": [s.path for s in cfg.train if s.takes_gan]}

    per_rank = max(1, cfg.batch_size // dist.world)
    sampler = StepSampler(entries, per_rank * dist.world, cfg.seed, cfg.bucket_chunks, dist.rank, dist.world)
    workers = cfg.workers if cfg.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // max(1, dist.world) - 1))
                                                     if device.startswith("cuda") else 0)
    loader = torch.utils.data.DataLoader(
        TrainDataset(entries, unwrap(model).cfg, vocab, cfg.augment, gan_filter, [s.takes_gan for s in cfg.train]),
        batch_sampler=sampler.range(step, min(cfg.steps, stop_after or cfg.steps)),
        collate_fn=Collate(unwrap(model).cfg),
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )

    def save(path: Path) -> None:
        state = {
            "step": step, "optimizer": optimizer.state_dict(), "best": best, "bad_evals": bad_evals,
            "history": history, "rng_cpu": torch.get_rng_state(), "config": cfg.to_dict(),
        }
        if scaler.is_enabled():
            state["scaler"] = scaler.state_dict()
        if device.startswith("cuda"):
            state["rng_cuda"] = torch.cuda.get_rng_state()
        save_checkpoint(path, model, unwrap(model).cfg, vocab, state)

    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        log_path = out / "log.csv"
        new_log = not log_path.exists() or step == 0
        log_file = open(log_path, "w" if new_log else "a", newline="")
        writer = csv.DictWriter(log_file, LOG_FIELDS)
        if new_log:
            writer.writeheader()
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and dist.main), unit="step", dynamic_ncols=True)
    model.train()
    if cfg.freeze_cnn:
        unwrap(model).cnn.eval()
    started = time.time()
    window = {"loss": 0.0, "n": 0, "images": 0, "time": time.time(), "too_long": 0, "corrupt": 0}
    stopped = ""
    batches = iter(loader)  # creating the iterator draws from the global RNG: restore the saved state after it
    if ts:
        torch.set_rng_state(ts["rng_cpu"])
        if device.startswith("cuda") and "rng_cuda" in ts:
            torch.cuda.set_rng_state(ts["rng_cuda"])
    stop_request = StopRequest()
    if dist.world == 1:  # under torchrun the launcher's signals end all ranks together
        stop_request.install()
    try:
        for batch in batches:
            window["too_long"] += batch["too_long"]
            window["corrupt"] += batch["corrupt"]
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if batch["images"] is not None:
                images = batch["images"].to(device, non_blocking=True)
                with torch.autocast(device.split(":")[0], dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = model(images)
                log_probs = logits.float().log_softmax(2).permute(1, 0, 2)  # (B, T, K) -> (T, B, K)
                input_lengths = batch["input_lengths"].clamp(max=log_probs.shape[0])
                loss = F.ctc_loss(log_probs, batch["targets"].to(device), input_lengths, batch["target_lengths"],
                                  blank=0, reduction="mean", zero_infinity=True)
            else:
                loss = sum(p.sum() * 0.0 for p in model.parameters())  # keeps DDP ranks in step
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            window["loss"] += float(loss.detach())
            window["n"] += 1
            window["images"] += 0 if batch["images"] is None else len(batch["images"]) * dist.world
            bar.update(1)

            at_log = step % cfg.log_every == 0 or step == cfg.steps
            at_val = bool(cfg.val) and (step % cfg.val_every == 0 or step == cfg.steps)
            over_time = cfg.max_minutes > 0 and (time.time() - started) > cfg.max_minutes * 60
            signalled = bool(stop_request.signal)
            row = None
            if at_log or at_val or over_time or signalled:
                elapsed = time.time() - window["time"]
                row = {"step": step, "lr": f"{lr:.3g}", "loss": f"{window['loss'] / max(window['n'], 1):.4f}",
                       "images_per_s": f"{window['images'] / max(elapsed, 1e-9):.1f}",
                       "skipped_too_long": window["too_long"], "skipped_corrupt": window["corrupt"],
                       "elapsed_s": f"{time.time() - started:.0f}"}
                bar.set_postfix(loss=row["loss"], img_s=row["images_per_s"], lr=row["lr"])
                window.update(loss=0.0, n=0, images=0, time=time.time(), too_long=0, corrupt=0)
            if at_val and dist.main:
                scores = validate(model, vocab, val_sources, cfg.val_limit)
                acc = float(np.mean([s["accuracy"] for s in scores]))
                cer = float(np.mean([s["cer"] for s in scores]))
                history.append({"step": step, "accuracy": acc, "cer": cer,
                                "sets": {s["name"]: {"accuracy": s["accuracy"], "cer": s["cer"],
                                                     "protocol_accuracy": s["protocol_accuracy"]} for s in scores}})
                row = row or {"step": step}
                row.update(val_accuracy=f"{acc:.4f}", val_cer=f"{cer:.4f}")
                bar.write(f"step {step}: val accuracy {acc:.4f} CER {cer:.4f} " +
                          " ".join(f"{s['name']}={s['accuracy']:.3f}" for s in scores))
                if (acc, -cer) > (best["accuracy"], -best["cer"]):
                    best = {"accuracy": acc, "cer": cer, "step": step}
                    bad_evals = 0
                    save(best_path)
                else:
                    bad_evals += 1
                model.train()
                if cfg.freeze_cnn:
                    unwrap(model).cnn.eval()
            if row is not None and dist.main:
                writer.writerow(row)
                log_file.flush()
            if cfg.early_stop and bad_evals >= cfg.early_stop:
                stopped = f"early stop: no improvement in {bad_evals} validations"
            if over_time:
                stopped = stopped or f"time limit of {cfg.max_minutes} minutes reached"
            if signalled:
                stopped = stopped or f"stopped by {stop_request.signal} after step {step}"
            if dist.main and (step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped):
                save(last_path)
            if dist.main and cfg.keep_every and step % cfg.keep_every == 0:
                save_checkpoint(kept_path(out, step), model, unwrap(model).cfg, vocab)
            if stopped:
                break
        if stop_after is not None and step < cfg.steps and not stopped:
            stopped = f"stopped after step {step} as asked"
            if dist.main and step % cfg.checkpoint_every != 0:
                save(last_path)
    except KeyboardInterrupt:
        bar.close()
        if dist.main:
            save(last_path)
            log(f"interrupted: saved {last_path} at step {step}; run the same command to continue")
        raise
    finally:
        stop_request.restore()
    bar.close()
    if stopped.startswith("stopped by"):
        log(f"{stopped}: saved {last_path}; run the same command to continue")
    if dist.main:
        if not cfg.val and step == cfg.steps:
            save(best_path)
        log_file.close()
        plot_log(out / "log.csv", out / "curves.png")
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return TrainResult(str(out), step, best, history, report, stopped)


def kept_path(out: Path, step: int) -> Path:
    """Where a run keeps the weights of `step` (config `keep_every`), for checkpoint averaging."""
    return out / "kept" / f"step_{step:07d}.pt"


def validate(model: nn.Module, vocab: Vocab, sources, limit: int) -> list[dict]:
    plain = unwrap(model)
    plain.eval()
    device = next(plain.parameters()).device

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        return plain(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    recognizer = TextRecognizer(forward, plain.cfg, vocab, batch_size=64)
    return [evaluate_source(recognizer, src, limit=limit, name=name) for name, src in sources]


def plot_log(csv_path: Path, png_path: Path) -> bool:
    """Loss and validation curves as a PNG (needs matplotlib; returns False without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    loss = [(int(r["step"]), float(r["loss"])) for r in rows if r.get("loss")]
    val = [(int(r["step"]), float(r["val_accuracy"]), float(r["val_cer"])) for r in rows if r.get("val_accuracy")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if loss:
        axes[0].plot(*zip(*loss))
        axes[0].set_yscale("log")
    axes[0].set(title="CTC loss", xlabel="step")
    if val:
        steps, acc, cer = zip(*val)
        axes[1].plot(steps, acc, label="word accuracy")
        axes[1].plot(steps, cer, label="CER")
        axes[1].legend()
    axes[1].set(title="validation", xlabel="step")
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return True
