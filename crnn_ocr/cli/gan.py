"""`ocr gan train | sample`: train the GAN that makes renders look real, and look at what it does.

Registered on the `ocr` group in `crnn_ocr.cli`. torch is imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from crnn_ocr.cli.common import fail, handles_errors


@click.group()
def gan() -> None:
    """A GAN that makes synthetic training text look like real crops (see crnn_ocr/gan/README.md)."""


@gan.command("train")
@click.option("--real", "-r", multiple=True, required=True,
              help="Real crops, any dataset form (labels ignored). Repeat for several. Never an evaluation set.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="GAN checkpoint to write (resumed if it exists).")
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--recognizer", type=click.Path(dir_okay=False, exists=True),
              help="A crnn_ocr checkpoint (.pt) for the CTC content term; sets height and channels. Without it only L1 keeps the text.")
@click.option("--synth", type=click.Path(exists=True),
              help="Labelled renders to refine (e.g. an LMDB from `ocr data synth`); default: render with --fonts.")
@click.option("--synth-count", type=click.IntRange(1), default=2000, show_default=True, help="How many renders to use / render.")
@click.option("--fonts", "font_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Font folders for rendering (default: system fonts + bundled).")
@click.option("--height", type=click.Choice(["16", "32", "48", "64"]), default="32", show_default=True,
              help="Image height (without --recognizer).")
@click.option("--color", is_flag=True, help="RGB images (without --recognizer; default gray).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--lr-g", type=float, default=2e-4, show_default=True)
@click.option("--lr-d", type=float, default=2e-4, show_default=True)
@click.option("--loss", type=click.Choice(["hinge", "lsgan"]), default="hinge", show_default=True)
@click.option("--ctc-weight", type=float, default=1.0, show_default=True)
@click.option("--pixel-weight", type=float, default=1.0, show_default=True)
@click.option("--adv-weight", type=float, default=1.0, show_default=True)
@click.option("--gen-width", type=click.IntRange(1), default=16, show_default=True)
@click.option("--gen-blocks", type=click.IntRange(0), default=3, show_default=True)
@click.option("--disc-width", type=click.IntRange(1), default=32, show_default=True)
@click.option("--sample-every", type=click.IntRange(0), default=200, show_default=True,
              help="Write a sample grid every N steps (0: never).")
@click.option("--samples", type=click.Path(file_okay=False), help="Folder for sample grids and log.csv (default: OUT_samples/).")
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="torch CPU threads (0: default).")
@click.option("--fresh", is_flag=True, help="Start over even if OUT exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def train_cmd(real, out, steps, recognizer, synth, synth_count, font_dirs, height, color, batch_size, lr_g, lr_d, loss,
              ctc_weight, pixel_weight, adv_weight, gen_width, gen_blocks, disc_width, sample_every, samples,
              checkpoint_every, seed, device, threads, fresh, quiet):
    """Train the generator against real crops; renders come from --synth or are drawn with the system fonts."""
    if any("shared/eval" in str(Path(p).resolve()).replace("\\", "/") for p in real):
        fail("refusing to train on an evaluation set (shared/eval): use training splits for --real")
    import warnings

    from crnn_ocr.gan.train import GanTrainConfig, train_gan

    cfg = GanTrainConfig(
        real=list(real), out=out, synth=synth, synth_count=max(synth_count, batch_size), fonts=list(font_dirs) or None,
        recognizer=recognizer, height=int(height), channels=3 if color else 1, gen_width=gen_width,
        gen_blocks=gen_blocks, disc_width=disc_width, steps=steps, batch_size=batch_size, lr_g=lr_g, lr_d=lr_d,
        loss=loss, adv_weight=adv_weight, ctc_weight=ctc_weight, pixel_weight=pixel_weight,
        sample_every=sample_every, samples=samples, checkpoint_every=checkpoint_every, seed=seed, device=device,
        threads=threads,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_gan(cfg, progress=not quiet, resume=not fresh, log=click.echo)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    last = result.history[-1] if result.history else {}
    click.echo(f"wrote {result.out} at step {result.step}: " + json.dumps({**result.report, "last": last}))
    if result.samples:
        click.echo(f"sample grids: {Path(result.samples[0]).parent} (latest {Path(result.samples[-1]).name})")


@gan.command("sample")
@click.option("--model", "-m", required=True, type=click.Path(dir_okay=False, exists=True), help="GAN checkpoint.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="PNG grid to write.")
@click.option("--real", "-r", multiple=True, help="Real crops for the third column (default: the ones it was trained on).")
@click.option("--synth", type=click.Path(exists=True), help="Labelled renders (default: render with --fonts).")
@click.option("--fonts", "font_dirs", multiple=True, type=click.Path(file_okay=False, exists=True))
@click.option("--count", "-n", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--scale", type=click.IntRange(1, 4), default=1, show_default=True, help="Enlarge the grid (nearest).")
@click.option("--seed", type=int, default=0, show_default=True)
@handles_errors
def sample_cmd(model, out, real, synth, font_dirs, count, scale, seed):
    """Write a grid of render / generated / real crops side by side."""
    from crnn_ocr.gan.data import RealPool, RenderPool
    from crnn_ocr.gan.samples import save_grid
    from crnn_ocr.gan.train import grid_rows, load_gan_checkpoint, networks_from_checkpoint

    data = load_gan_checkpoint(model)
    gen, _ = networks_from_checkpoint(data, model, discriminator=False)
    cfg = gen.cfg
    trained = (data.get("train_state") or {}).get("train_config") or {}
    real = list(real) or list(trained.get("real") or [])
    if not real:
        fail("give --real: the checkpoint does not say which real crops it was trained on")
    missing = [p for p in real if not Path(p).exists()]
    if missing:
        fail(f"{missing[0]}: no such dataset (give --real)")
    if synth:
        renders = RenderPool.from_dataset(synth, count, cfg.height, cfg.channels, 320, seed)
    else:
        renders = RenderPool.render(count, cfg.height, cfg.channels, 320, seed, list(font_dirs) or None)
    pool = RealPool(cfg.height, cfg.channels, 320, paths=real)
    rows = grid_rows(gen, renders, pool, count, seed, "cpu")
    save_grid(rows, out, header=("render", "generated", "real"), scale=scale)
    click.echo(f"wrote {out}: {len(rows)} rows of render / generated / real")


@gan.command("refine")
@click.argument("source", type=click.Path(exists=True))
@click.option("--model", "-m", required=True, type=click.Path(dir_okay=False, exists=True), help="GAN checkpoint.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="The LMDB to write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it is an LMDB crnn_ocr wrote.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def refine_cmd(source, model, out, seed, overwrite, quiet):
    """Pass the renders of SOURCE (any dataset, e.g. from `ocr data synth`) through the generator into an LMDB."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.gan import load_refiner, refine_dataset

    n = refine_dataset(open_source(source), out, load_refiner(model, seed=seed), overwrite, progress=not quiet)
    click.echo(f"wrote {n} refined samples to {out}")

