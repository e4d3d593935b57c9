"""The training loop: mixed data, AdamW with warm-up and cosine/one-cycle decay, CTC, validation, atomic
best/last checkpoints, exact resume, early stop, mixed precision on CUDA and DistributedDataParallel.

Read `train()` top to bottom: `start_run` builds or restores the `Run` (model, optimiser, counters),
`make_loader` the step-indexed batches, `train_step` does one optimiser step, `validate_run` scores and keeps
best.pt, `Run.save` writes last.pt. The model is used only through `crnn_ocr.models.RecognitionModel`.
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

from crnn_ocr.config import ModelConfig, TrainConfig
from crnn_ocr.datasets.sources import open_source
from crnn_ocr.errors import CheckpointError, ConfigError, DatasetError
from crnn_ocr.files import atomic_path
from crnn_ocr.models import RecognitionModel, create_model
from crnn_ocr.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, unwrap
from crnn_ocr.recognize.base import TextRecognizer
from crnn_ocr.text.vocab import DEFAULT_CHARSET, Vocab, named_charset
from crnn_ocr.train.data import SYNTH, Collate, SampleFilterHook, StepSampler, TrainDataset, open_training_sources
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
    """From the config (characters, or a charset name: `default`, `latin`), else the init model's, else the default
    charset; None means: derive from the data."""
    if cfg.vocab_file:
        return Vocab.from_file(cfg.vocab_file)
    if cfg.vocab:
        return Vocab(named_charset(cfg.vocab) or cfg.vocab)
    if init is not None:
        return Vocab(init["vocab"])
    if any(s.path == SYNTH for s in cfg.train):
        return Vocab(DEFAULT_CHARSET)
    return None


def transfer_weights(model: RecognitionModel, init: dict, new_vocab: Vocab, path: str) -> dict:
    """Load `init` weights into `model`; for a changed vocabulary keep the class rows of shared characters."""
    old_model, _, old_vocab = model_from_checkpoint(init, path)
    state = old_model.state_dict()
    target = model.state_dict()
    class_layers = set(model.class_layers())
    for name, tensor in state.items():
        if name in class_layers:
            continue
        if name not in target or target[name].shape != tensor.shape:
            raise CheckpointError(f"{path}: layer {name} does not fit the new model")
        target[name] = tensor
    old_index = {c: i + 1 for i, c in enumerate(old_vocab.chars)}
    rows = [0] + [old_index.get(c, -1) for c in new_vocab.chars]
    for name in class_layers:
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
    so that `kill`, a scheduler's preemption or Ctrl-C lose nothing and resume exactly. Further signals while
    the run is stopping are ignored: the step always completes before anything is saved."""

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

        self.signal = self.signal or signal.Signals(signum).name

    def restore(self) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def loader_worker_init(_: int = 0) -> None:
    """Data loader workers leave SIGTERM to the training process: a scheduler or `kill` that signals the whole
    process group must not end a worker mid-step (the loader would then fail before the run can save)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)  # loader workers must not compete with the training threads


def stop_loader_workers(batches) -> None:
    """Loader workers ignore SIGTERM (`loader_worker_init`), so the terminate() that multiprocessing sends its
    children at exit cannot end one, and the exit then waits for it forever: shut the workers down as the loader
    does when it runs out, and kill any still alive (a run that stopped early, or raised, leaves them waiting)."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    for worker in getattr(batches, "_workers", []):
        if worker.is_alive():
            worker.kill()
            worker.join(5)


MAX_UNREADABLE_SHARE = 0.5  # a log interval in which more of the drawn samples than this failed to load stops the run
# model settings that a resumed run must share with the run it continues; training settings may change
MODEL_KEYS = ("model", "vocab", "vocab_file", "init", "train_only")
WARN_KEYS = ("lr", "batch_size", "weight_decay", "schedule", "warmup_steps", "min_lr_ratio", "grad_clip", "seed", "train")


def check_resume(cfg: TrainConfig, saved: dict, path: Path, log) -> None:
    """The command resuming a run must describe the same model; changed training settings are reported."""
    if not saved:
        return
    current = cfg.to_dict()
    differ = [k for k in MODEL_KEYS if k in saved and saved[k] != current[k]]
    if differ:
        shown = "; ".join(f"{k}: run has {saved[k]!r}, command gives {current[k]!r}" for k in differ)
        raise ConfigError(f"{path} continues a run with other model settings ({shown}); "
                          "give the run's settings, or --fresh / another --out to start over")
    changed = [k for k in WARN_KEYS if k in saved and saved[k] != current[k]]
    if changed:
        log("warning: resuming with changed " + ", ".join(f"{k} ({saved[k]!r} -> {current[k]!r})" for k in changed))


@dataclass
class Run:
    """What a run carries from step to step and keeps in last.pt."""

    cfg: TrainConfig
    model: nn.Module  # a RecognitionModel, or DistributedDataParallel around one
    vocab: Vocab
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: str
    step: int = 0
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "cer": math.inf, "step": -1})
    bad_evals: int = 0
    history: list = field(default_factory=list)
    report: dict = field(default_factory=dict)

    @property
    def net(self) -> RecognitionModel:
        return unwrap(self.model)

    def save(self, path: Path) -> None:
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(), "best": self.best,
                 "bad_evals": self.bad_evals, "history": self.history, "rng_cpu": torch.get_rng_state(),
                 "config": self.cfg.to_dict()}
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if self.device.startswith("cuda"):
            state["rng_cuda"] = torch.cuda.get_rng_state()
        save_checkpoint(path, self.model, self.net.cfg, self.vocab, state)

    def train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_cnn:
            self.net.backbone().eval()
        if self.cfg.train_only:
            self.net.train_only(self.cfg.train_only)


def start_run(cfg: TrainConfig, device: str, resume: bool, log) -> tuple[Run, dict, list]:
    """The model, vocabulary, optimiser and counters: from last.pt when resuming, else new (or from `init`)."""
    last_path = Path(cfg.out) / "last.pt"
    resume_state = load_checkpoint(last_path) if resume and last_path.exists() else None
    init = load_checkpoint(cfg.init) if cfg.init and resume_state is None else None
    ts: dict = {}
    if resume_state is not None:
        ts = resume_state["train_state"]
        check_resume(cfg, ts.get("config", {}), last_path, log)
        model, _, vocab = model_from_checkpoint(resume_state, last_path)
    else:
        vocab = resolve_vocab(cfg, init)
    entries, report = open_training_sources(cfg.train, vocab)
    if vocab is None:
        vocab = Vocab.from_texts(t for e in entries for t in (e.source.label(int(i)) for i in e.valid))
    if resume_state is None:
        model_cfg = cfg.model
        if init is not None:  # the init model's shape; a config's `rectify` adds a rectifier in front of it
            model_cfg = ModelConfig.from_dict({**init["config"], "rectify": cfg.model.rectify or init["config"].get("rectify")})
        model = create_model(model_cfg, vocab.num_classes)
        if init is not None:
            report["init"] = {"from": cfg.init, **transfer_weights(model, init, vocab, cfg.init)}
    model.to(device)
    if cfg.freeze_cnn:
        model.freeze_backbone()
    if cfg.train_only:
        model.train_only(cfg.train_only)
    report["parameters"] = sum(p.numel() for p in model.parameters())
    report["trained_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report["vocab_size"] = len(vocab)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    amp_dtype = resolve_precision(cfg.precision, device)
    run = Run(cfg, model, vocab, optimizer, torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16), device,
              report=report)
    if ts:
        optimizer.load_state_dict(ts["optimizer"])
        if "scaler" in ts and run.scaler.is_enabled():
            run.scaler.load_state_dict(ts["scaler"])
        run.step, run.best, run.bad_evals, run.history = ts["step"], dict(ts["best"]), ts["bad_evals"], list(ts["history"])
        log(f"resuming {last_path} at step {run.step}")
    return run, ts, entries


def make_loader(run: Run, entries: list, dist: Dist, stop: int, sample_filter: SampleFilterHook | None):
    cfg = run.cfg
    per_rank = max(1, cfg.batch_size // dist.world)
    sampler = StepSampler(entries, per_rank * dist.world, cfg.seed, cfg.bucket_chunks, dist.rank, dist.world)
    cuda = run.device.startswith("cuda")
    workers = cfg.workers if cfg.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // max(1, dist.world) - 1))
                                                     if cuda else 0)
    filtered = [sample_filter.applies_to(s) for s in cfg.train] if sample_filter else []
    dataset = TrainDataset(entries, run.net.cfg, run.vocab, cfg.augment, sample_filter, filtered)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler.range(run.step, stop), collate_fn=Collate(run.net.cfg),
                                       num_workers=workers, pin_memory=cuda, persistent_workers=False,
                                       worker_init_fn=loader_worker_init if workers > 0 else None,
                                       prefetch_factor=4 if workers > 0 else None)


def train_step(run: Run, batch: dict, amp_dtype: torch.dtype | None) -> torch.Tensor:
    """One optimiser step on one batch; returns the (detached) CTC loss."""
    lr = lr_at(run.step, run.cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    if batch["images"] is not None:
        images = batch["images"].to(run.device, non_blocking=True)
        with torch.autocast(run.device.split(":")[0], dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = run.model(images)
        log_probs = logits.float().log_softmax(2).permute(1, 0, 2)  # (B, T, K) -> (T, B, K)
        input_lengths = batch["input_lengths"].clamp(max=log_probs.shape[0])
        loss = F.ctc_loss(log_probs, batch["targets"].to(run.device), input_lengths, batch["target_lengths"],
                          blank=0, reduction="mean", zero_infinity=True)
    else:
        loss = sum(p.sum() * 0.0 for p in run.model.parameters())  # keeps DDP ranks in step
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if run.cfg.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    return loss.detach()


class Window:
    """Counts between two log rows, and over the whole sitting (to refuse a run that saw no usable sample)."""

    def __init__(self) -> None:
        self.reset()
        self.total_images, self.total_corrupt, self.total_too_long = 0, 0, 0

    def reset(self) -> None:
        self.loss, self.n, self.images, self.too_long, self.corrupt, self.time = 0.0, 0, 0, 0, 0, time.time()
        self.drawn = 0  # samples this process drew, usable or not

    def unreadable_share(self) -> float:
        return self.corrupt / self.drawn if self.drawn else 0.0

    def add(self, batch: dict, loss: torch.Tensor, world: int) -> None:
        images = 0 if batch["images"] is None else len(batch["images"]) * world
        self.loss += float(loss)
        self.n += 1
        self.images += images
        self.too_long += batch["too_long"]
        self.corrupt += batch["corrupt"]
        self.drawn += batch["corrupt"] + batch["too_long"] + (0 if batch["images"] is None else len(batch["images"]))
        self.total_images += images
        self.total_too_long += batch["too_long"]
        self.total_corrupt += batch["corrupt"]

    def row(self, step: int, lr: float, started: float) -> dict:
        elapsed = time.time() - self.time
        row = {"step": step, "lr": f"{lr:.3g}", "loss": f"{self.loss / max(self.n, 1):.4f}",
               "images_per_s": f"{self.images / max(elapsed, 1e-9):.1f}", "skipped_too_long": self.too_long,
               "skipped_corrupt": self.corrupt, "elapsed_s": f"{time.time() - started:.0f}"}
        self.reset()
        return row


class RunLog:
    """log.csv: one row per logged step. On resume, rows after the resumed step (written before a crash, whose
    steps are now trained again) are dropped, so no step appears twice."""

    def __init__(self, path: Path, step: int):
        rows = []
        if step > 0 and path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def remove_stale_temporaries(out: Path) -> None:
    """Temporary checkpoint files of a process that was killed while saving (atomic saves leave `NAME.*.tmp`)."""
    for name in ("last.pt", "best.pt"):
        for stale in out.glob(f"{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def validate_run(run: Run, val_sources: list) -> dict:
    """Score the validation sets; keep best.pt when the mean accuracy (then CER) improves."""
    scores = validate(run.model, run.vocab, val_sources, run.cfg.val_limit)
    acc = float(np.mean([s["accuracy"] for s in scores]))
    cer = float(np.mean([s["cer"] for s in scores]))
    run.history.append({"step": run.step, "accuracy": acc, "cer": cer,
                        "sets": {s["name"]: {"accuracy": s["accuracy"], "cer": s["cer"],
                                             "protocol_accuracy": s["protocol_accuracy"]} for s in scores}})
    if (acc, -cer) > (run.best["accuracy"], -run.best["cer"]):
        run.best = {"accuracy": acc, "cer": cer, "step": run.step}
        run.bad_evals = 0
        run.save(Path(run.cfg.out) / "best.pt")
    else:
        run.bad_evals += 1
    run.train_mode()
    return {"accuracy": acc, "cer": cer, "sets": scores}


def train(cfg: TrainConfig, progress: bool = True, resume: bool = True, log=print,
          stop_after: int | None = None, sample_filter: SampleFilterHook | None = None) -> TrainResult:
    """Run (or continue) a training run described by `cfg`; files go to `cfg.out`.

    If `cfg.out/last.pt` exists and `resume` is true, training continues exactly where it stopped.
    `stop_after` ends this sitting at that step (checkpointed) without changing the schedule, as does
    SIGTERM or Ctrl-C: the run continues later from last.pt. `sample_filter` is the hook through which
    experimental image transforms (the GAN refiner, `crnn_ocr.gan.make_sample_filter`) reach training.

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
    last_path = out / "last.pt"

    run, ts, entries = start_run(cfg, device, resume, log)
    first_step = run.step
    if sample_filter is not None:
        run.report["sample_filter"] = sample_filter.describe(cfg.train)
    if dist.world > 1:
        run.model = nn.parallel.DistributedDataParallel(run.model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)
    val_sources = [(dataset_name(p), open_source(p)) for p in cfg.val] if dist.main else []
    loader = make_loader(run, entries, dist, min(cfg.steps, stop_after or cfg.steps), sample_filter)
    run_log = None
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
        run_log = RunLog(out / "log.csv", run.step)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=run.step, disable=not (progress and dist.main), unit="step", dynamic_ncols=True)
    run.train_mode()
    started = time.time()
    window = Window()
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
            lr = lr_at(run.step, cfg)
            loss = train_step(run, batch, amp_dtype)
            window.add(batch, loss, dist.world)
            bar.update(1)
            step = run.step
            at_log = step % cfg.log_every == 0 or step == cfg.steps
            at_val = bool(cfg.val) and (step % cfg.val_every == 0 or step == cfg.steps)
            over_time = cfg.max_minutes > 0 and (time.time() - started) > cfg.max_minutes * 60
            signalled = bool(stop_request.signal)
            unreadable = window.unreadable_share()
            row = window.row(step, lr, started) if (at_log or at_val or over_time or signalled) else None
            if row is not None and unreadable > MAX_UNREADABLE_SHARE:
                stopped = (f"stopped: {row['skipped_corrupt']} of the samples drawn by step {step} "
                           f"({unreadable:.0%}) could not be read")
            if row is not None:
                bar.set_postfix(loss=row["loss"], img_s=row["images_per_s"], lr=row["lr"])
            if at_val and dist.main:
                scores = validate_run(run, val_sources)
                row = row or {"step": step}
                row.update(val_accuracy=f"{scores['accuracy']:.4f}", val_cer=f"{scores['cer']:.4f}")
                bar.write(f"step {step}: val accuracy {scores['accuracy']:.4f} CER {scores['cer']:.4f} " +
                          " ".join(f"{s['name']}={s['accuracy']:.3f}" for s in scores["sets"]))
            if row is not None and run_log is not None:
                run_log.write(row)
            if cfg.early_stop and run.bad_evals >= cfg.early_stop:
                stopped = f"early stop: no improvement in {run.bad_evals} validations"
            if over_time:
                stopped = stopped or f"time limit of {cfg.max_minutes} minutes reached"
            if signalled:
                stopped = stopped or f"stopped by {stop_request.signal} after step {step}"
            if dist.main and (step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped):
                run.save(last_path)
            if dist.main and cfg.keep_every and step % cfg.keep_every == 0:
                save_checkpoint(kept_path(out, step), run.model, run.net.cfg, run.vocab)
            if stopped:
                break
        if stop_after is not None and run.step < cfg.steps and not stopped:
            stopped = f"stopped after step {run.step} as asked"
            if dist.main and run.step % cfg.checkpoint_every != 0:
                run.save(last_path)
    finally:
        stop_loader_workers(batches)
        stop_request.restore()
        bar.close()
        if run_log is not None:
            run_log.close()
    if stopped.startswith("stopped by"):
        log(f"{stopped}: saved {last_path}; run the same command to continue")
    if window.total_images == 0 and run.step > first_step:
        raise DatasetError(f"no usable training sample in steps {first_step + 1}-{run.step}: "
                           f"{window.total_corrupt} unreadable images, {window.total_too_long} labels too long for "
                           "their image; no model written (see log.csv)")
    if stopped.startswith("stopped: "):
        raise DatasetError(f"{stopped.removeprefix('stopped: ')}; the run stops rather than train on the rest "
                           f"(check the sources with `ocr data inspect`; {last_path} holds it so far)")
    if dist.main:
        if not cfg.val and run.step == cfg.steps:
            run.save(out / "best.pt")
        plot_log(out / "log.csv", out / "curves.png")
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return TrainResult(str(out), run.step, run.best, run.history, run.report, stopped)


def kept_path(out: Path, step: int) -> Path:
    """Where a run keeps the weights of `step` (config `keep_every`), for checkpoint averaging."""
    return out / "kept" / f"step_{step:07d}.pt"


def validate(model: nn.Module, vocab: Vocab, sources, limit: int) -> list[dict]:
    """Word accuracy and CER of `model` on each (name, source), read as `ocr eval` reads."""
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
