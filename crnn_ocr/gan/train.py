"""The GAN training loop: generator against patch discriminator, plus a content term that keeps the text.

Losses, per step (renders x with known texts, real crops r, noise z):

* discriminator: hinge  mean(relu(1 - D(r))) + mean(relu(1 + D(G(x, z))))   or LSGAN  mean((D(r) - 1)^2) + mean(D(G)^2)
* generator:     adv_weight * (-mean(D(G)) | mean((D(G) - 1)^2))
                 + ctc_weight * CTC(frozen recognizer(G(x, z)), text of x)   (only with a recognizer)
                 + pixel_weight * mean|G(x, z) - x|

Means are taken over the patches / pixels inside each image (batches are padded on the right).
Each step's data and noise depend only on (seed, step), so a resumed run continues exactly.

>>> # train_gan(GanTrainConfig(real=["../shared/train/ic15_train"], out="gan.pt", steps=2000))
"""

from __future__ import annotations

import csv
import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_ocr.config import ModelConfig, build
from crnn_ocr.errors import CheckpointError, ConfigError
from crnn_ocr.gan.data import RealPool, RenderPool, pad_batch
from crnn_ocr.gan.models import GanConfig, Generator, PatchDiscriminator, from_unit, patch_columns
from crnn_ocr.text.vocab import Vocab

FORMAT = "crnn_ocr.gan/1"
LOG_FIELDS = ["step", "d_loss", "g_adv", "ctc", "pixel", "d_real", "d_fake", "seconds"]


@dataclass
class GanTrainConfig:
    """Everything one GAN run needs; stored in its checkpoint so that a resumed run rebuilds the same data."""

    real: list[str] = field(default_factory=list)
    out: str = "gan.pt"
    synth: str | None = None
    synth_count: int = 2000
    fonts: list[str] | None = None
    recognizer: str | None = None
    height: int = 32
    channels: int = 1
    gen_width: int = 16
    gen_blocks: int = 3
    noise_channels: int = 1
    disc_width: int = 32
    steps: int = 2000
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    loss: str = "hinge"
    adv_weight: float = 1.0
    ctc_weight: float = 1.0
    pixel_weight: float = 1.0
    max_width: int = 320
    real_crop: int = 256
    sample_every: int = 200
    samples: str | None = None
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.steps > 0 and self.batch_size > 0, "steps and batch_size must be positive"),
            (self.lr_g > 0 and self.lr_d > 0, "learning rates must be positive"),
            (self.loss in ("hinge", "lsgan"), "loss must be hinge or lsgan"),
            (min(self.adv_weight, self.ctc_weight, self.pixel_weight) >= 0, "loss weights must be >= 0"),
            (self.synth_count >= self.batch_size, "synth_count must be at least batch_size"),
            (self.max_width >= 16 and self.real_crop >= 16, "max_width and real_crop must be >= 16"),
            (self.sample_every >= 0 and self.checkpoint_every > 0 and self.log_every > 0,
             "sample_every >= 0, checkpoint_every and log_every > 0"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device must be auto, cpu or cuda"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        GanConfig(self.height, self.channels, self.noise_channels, self.gen_width, self.gen_blocks, self.disc_width)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanTrainConfig:
        return build(cls, data, "gan train config")


@dataclass
class GanResult:
    out: str
    step: int
    history: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    report: dict = field(default_factory=dict)


class ContentLoss:
    """CTC loss of a frozen crnn_ocr recognizer on generated images: the text must stay readable and the same."""

    def __init__(self, model: nn.Module, cfg: ModelConfig, vocab: Vocab):
        self.model, self.cfg, self.vocab = model, cfg, vocab
        model.eval()  # batch-norm statistics fixed, dropout off
        for p in model.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> ContentLoss:
        from crnn_ocr.models.checkpoint import load_model

        return cls(*load_model(path))

    def to(self, device: str) -> ContentLoss:
        self.model.to(device)
        return self

    def __call__(self, images: torch.Tensor, widths: Sequence[int], targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """images (B, C, H, W) in [-1, 1]; mean CTC loss per sample (zero_infinity: impossible alignments give 0)."""
        x = ((images + 1.0) * 0.5 - self.cfg.mean) / self.cfg.std  # the recognizer's own normalisation
        stride = self.cfg.width_stride
        if x.shape[3] % stride:
            x = F.pad(x, (0, stride - x.shape[3] % stride), mode="replicate")
        with torch.backends.cudnn.flags(enabled=False):  # cuDNN refuses LSTM backward in eval mode
            logits = self.model(x)  # (B, T, K)
        log_probs = logits.float().log_softmax(2).permute(1, 0, 2)  # (B, T, K) -> (T, B, K)
        lengths = torch.as_tensor([-(-int(w) // stride) for w in widths], dtype=torch.long).clamp(max=log_probs.shape[0])
        flat = torch.tensor([c for t in targets for c in t], dtype=torch.long, device=images.device)
        target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        return F.ctc_loss(log_probs, flat, lengths, target_lengths, blank=0, reduction="mean", zero_infinity=True)


def column_mask(widths: Sequence[int], stride: int, out_width: int, device) -> torch.Tensor:
    """(B, 1, 1, out_width) float mask of the output columns that lie inside each image."""
    cols = patch_columns(widths) if stride > 1 else torch.as_tensor(np.asarray(widths), dtype=torch.long)
    idx = torch.arange(out_width)[None, :]
    return (idx < cols[:, None]).float().to(device)[:, None, None, :]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values (B, C, H, W) over the positions where mask (B, 1, 1, W) is 1."""
    weight = mask.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor, real_mask: torch.Tensor, fake_mask: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return masked_mean(F.relu(1 - real), real_mask) + masked_mean(F.relu(1 + fake), fake_mask)
    return masked_mean((real - 1) ** 2, real_mask) + masked_mean(fake**2, fake_mask)


def g_adv_fn(kind: str, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -masked_mean(fake, mask)
    return masked_mean((fake - 1) ** 2, mask)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but torch sees no CUDA GPU")
    return name


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**63 - 1)


def gan_config_of(cfg: GanTrainConfig) -> GanConfig:
    return GanConfig(cfg.height, cfg.channels, cfg.noise_channels, cfg.gen_width, cfg.gen_blocks, cfg.disc_width)


# ----------------------------------------------------------------------------------------------- checkpoints


def save_gan(path: str | Path, gen: Generator, disc: PatchDiscriminator, train_state: dict | None = None) -> None:
    """One `.pt` of plain types and tensors: {"format": "crnn_ocr.gan/1", "config", "generator", "discriminator",
    "train_state"}; loadable with torch.load(weights_only=True). Written atomically."""
    from crnn_ocr.models.checkpoint import atomic_torch_save

    payload = {
        "format": FORMAT,
        "config": gen.cfg.to_dict(),
        "generator": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
        "discriminator": {k: v.detach().cpu() for k, v in disc.state_dict().items()},
        "train_state": train_state or {},
    }
    atomic_torch_save(payload, path)


def load_gan_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a GAN checkpoint without running code from it."""
    from crnn_ocr.models.checkpoint import safe_torch_load

    path = Path(path)
    data = safe_torch_load(path, "GAN checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a crnn_ocr GAN checkpoint (expected format {FORMAT})")
    missing = [k for k in ("config", "generator") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: GAN checkpoint lacks {', '.join(missing)}")
    return data


def networks_from_checkpoint(data: dict[str, Any], path: str | Path = "checkpoint",
                             discriminator: bool = True) -> tuple[Generator, PatchDiscriminator | None]:
    try:
        cfg = GanConfig.from_dict(dict(data["config"]))
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid GAN description ({e})") from e
    gen = Generator(cfg)
    disc = PatchDiscriminator(cfg) if discriminator and "discriminator" in data else None
    try:
        gen.load_state_dict(data["generator"])
        if disc is not None:
            disc.load_state_dict(data["discriminator"])
    except (RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit the GAN architecture: {str(e).splitlines()[0]}") from e
    return gen, disc


def load_generator(path: str | Path) -> Generator:
    """The generator of a GAN checkpoint, in eval mode on the CPU."""
    gen, _ = networks_from_checkpoint(load_gan_checkpoint(path), path, discriminator=False)
    return gen.eval()


# ------------------------------------------------------------------------------------------------- training


def build_pools(cfg: GanTrainConfig, vocab: Vocab | None, renders=None, real=None, progress: bool = False):
    """The render pool and the real pool of a run (given ones are used as they are)."""
    if renders is None:
        if cfg.synth:
            renders = RenderPool.from_dataset(cfg.synth, cfg.synth_count, cfg.height, cfg.channels, cfg.max_width,
                                              cfg.seed, vocab)
        else:
            renders = RenderPool.render(cfg.synth_count, cfg.height, cfg.channels, cfg.max_width, cfg.seed,
                                        cfg.fonts, vocab, progress=progress)
    elif not isinstance(renders, RenderPool):
        renders = RenderPool.from_pairs(list(renders), cfg.height, cfg.channels, cfg.max_width, vocab)
    if real is None:
        real = RealPool(cfg.height, cfg.channels, cfg.real_crop, paths=cfg.real)
    elif not isinstance(real, RealPool):
        real = RealPool(cfg.height, cfg.channels, cfg.real_crop, arrays=list(real))
    return renders, real


def grid_rows(gen: Generator, renders: RenderPool, real: RealPool, count: int, seed: int, device: str) -> list[list[np.ndarray]]:
    """`count` rows of [render, generated, real crop] (uint8), the same renders and noise for every call."""
    rng = np.random.default_rng([seed, 99])
    idx = rng.choice(len(renders), size=min(count, len(renders)), replace=False)
    reals = real.sample(rng, len(idx))
    images = [renders.images[i] for i in idx]
    x, widths = pad_batch(images)
    noise_gen = torch.Generator().manual_seed(seed + 12345)
    was_training = gen.training
    gen.eval()
    with torch.no_grad():
        y = gen(x.to(device), generator=noise_gen)
    gen.train(was_training)
    fakes = from_unit(y)  # (B, C, H, W) uint8
    rows = []
    for k, (im, w) in enumerate(zip(images, widths)):
        fake = fakes[k, :, :, :w]
        fake = fake[0] if fake.shape[0] == 1 else fake.transpose(1, 2, 0)  # (1, H, W) -> (H, W); (C, H, W) -> (H, W, C)
        rows.append([im, fake, reals[k]])
    return rows


def train_gan(cfg: GanTrainConfig, renders=None, real=None, progress: bool = True, resume: bool = True,
              log: Callable[[str], None] = print) -> GanResult:
    """Train (or continue) a GAN; writes `cfg.out` (checkpoint), and sample grids + log.csv under `cfg.samples`.

    `renders` (a RenderPool or (image, text) pairs) and `real` (a RealPool or uint8 arrays) replace the
    datasets named in `cfg` (tests use them). If `cfg.out` exists and `resume` is true, the run continues from it.
    """
    from crnn_ocr.gan.samples import save_grid

    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    resume_state = load_gan_checkpoint(out) if resume and out.exists() else None

    content = None
    if cfg.recognizer:
        content = ContentLoss.from_checkpoint(cfg.recognizer)
        if (content.cfg.height, content.cfg.channels) != (cfg.height, cfg.channels):
            cfg = dataclasses.replace(cfg, height=content.cfg.height, channels=content.cfg.channels)
        content.to(device)
    elif cfg.ctc_weight > 0:
        warnings.warn("no recognizer given: the GAN keeps the text only through the pixel (L1) term; "
                      "pass a crnn_ocr checkpoint as recognizer for the CTC content term", stacklevel=2)
    vocab = content.vocab if content is not None else None
    gan_cfg = gan_config_of(cfg)

    torch.manual_seed(cfg.seed)
    gen, disc = Generator(gan_cfg), PatchDiscriminator(gan_cfg)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    step, history = 0, []
    if resume_state is not None:
        if dict(resume_state["config"]) != gan_cfg.to_dict():
            raise CheckpointError(f"{out}: was trained with another GAN architecture or geometry "
                                  f"({dict(resume_state['config'])}); remove it or start fresh")
        loaded_gen, loaded_disc = networks_from_checkpoint(resume_state, out)
        if loaded_disc is None:
            raise CheckpointError(f"{out}: holds no discriminator; cannot resume training from it")
        gen.load_state_dict(loaded_gen.state_dict())
        disc.load_state_dict(loaded_disc.state_dict())
        ts = resume_state.get("train_state") or {}
        if "opt_g" in ts:
            opt_g.load_state_dict(ts["opt_g"])
            opt_d.load_state_dict(ts["opt_d"])
        step, history = int(ts.get("step", 0)), list(ts.get("history", []))
        log(f"resuming {out} at step {step}")
    gen.to(device).train()
    disc.to(device).train()
    # Adam state loaded on the CPU must follow the parameters to the device
    for opt in (opt_g, opt_d):
        for state in opt.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    state[k] = v.to(device)

    renders, real = build_pools(cfg, vocab, renders, real, progress=progress)
    if content is not None and renders.targets is None:
        raise ConfigError("the render pool was made without the recognizer's vocabulary: no labels for the CTC term")
    report = {"renders": len(renders), "real": len(real), "device": device, "content_term": content is not None,
              "generator_parameters": sum(p.numel() for p in gen.parameters()),
              "discriminator_parameters": sum(p.numel() for p in disc.parameters())}
    samples_dir = Path(cfg.samples) if cfg.samples else out.with_name(out.stem + "_samples")
    sample_paths: list[str] = []
    log_path = samples_dir / "log.csv"
    samples_dir.mkdir(parents=True, exist_ok=True)
    new_log = step == 0 or not log_path.exists()
    log_file = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.DictWriter(log_file, LOG_FIELDS)
    if new_log:
        writer.writeheader()

    def save() -> None:
        state = {"step": step, "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "history": history,
                 "train_config": cfg.to_dict()}
        save_gan(out, gen, disc, state)

    def sample_grid() -> None:
        path = samples_dir / f"step_{step:07d}.png"
        save_grid(grid_rows(gen, renders, real, 6, cfg.seed, device), path, header=("render", "generated", "real"))
        sample_paths.append(str(path))

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True, desc="gan")
    window: dict[str, float] = {k: 0.0 for k in LOG_FIELDS[1:-1]}
    window_n, started = 0, time.time()
    try:
        while step < cfg.steps:
            rng = np.random.default_rng([cfg.seed, step])
            idx = rng.choice(len(renders), size=cfg.batch_size, replace=len(renders) < cfg.batch_size)
            x, x_widths = pad_batch([renders.images[i] for i in idx])
            r, r_widths = pad_batch(real.sample(rng, cfg.batch_size))
            x, r = x.to(device), r.to(device)
            noise = gen.make_noise(x, torch.Generator().manual_seed(step_seed(cfg.seed, step)))

            fake = gen(x, noise)
            # discriminator step
            for p in disc.parameters():
                p.requires_grad_(True)
            d_real, d_fake = disc(r), disc(fake.detach())
            real_mask = column_mask(r_widths, 8, d_real.shape[3], device)
            fake_mask = column_mask(x_widths, 8, d_fake.shape[3], device)
            loss_d = d_loss_fn(cfg.loss, d_real, d_fake, real_mask, fake_mask)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # generator step (the discriminator is only read)
            for p in disc.parameters():
                p.requires_grad_(False)
            g_adv = g_adv_fn(cfg.loss, disc(fake), fake_mask)
            pixel_mask = column_mask(x_widths, 1, x.shape[3], device)
            pixel = masked_mean((fake - x).abs(), pixel_mask)
            loss_g = cfg.adv_weight * g_adv + cfg.pixel_weight * pixel
            ctc = torch.zeros((), device=device)
            if content is not None and cfg.ctc_weight > 0:
                ctc = content(fake, x_widths, [renders.targets[i] for i in idx])  # type: ignore[index]
                loss_g = loss_g + cfg.ctc_weight * ctc
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            step += 1

            values = {"d_loss": loss_d, "g_adv": g_adv, "ctc": ctc, "pixel": pixel,
                      "d_real": masked_mean(d_real.detach(), real_mask), "d_fake": masked_mean(d_fake.detach(), fake_mask)}
            for k, v in values.items():
                window[k] += float(v.detach())
            window_n += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {k: round(v / window_n, 5) for k, v in window.items()}
                history.append({"step": step, **row})
                writer.writerow({"step": step, **row, "seconds": round(time.time() - started, 1)})
                log_file.flush()
                bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_adv']:.3f}", ctc=f"{row['ctc']:.3f}",
                                l1=f"{row['pixel']:.3f}")
                window, window_n = {k: 0.0 for k in window}, 0
            if cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                sample_grid()
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save()
    except KeyboardInterrupt:
        bar.close()
        save()
        log_file.close()
        log(f"interrupted: saved {out} at step {step}; run the same command to continue")
        raise
    bar.close()
    log_file.close()
    report["corrupt_real"] = real.corrupt
    return GanResult(str(out), step, history, sample_paths, report)
