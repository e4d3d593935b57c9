"""`ocr detector train | eval | export`: the text detector's training, scoring and ONNX export.

The recogniser has `ocr train`, `ocr eval` and `ocr export`; the detector has the same three under one group,
with the same habits (resumable runs, one-line errors, an export checked against torch before it is put in
place). torch is imported inside the commands.
"""

from __future__ import annotations

import json

import click

from crnn_ocr.cli.common import handles_errors
from crnn_ocr.train.allocator import ALLOCATORS, use_allocator


@click.group()
def detector() -> None:
    """Train, score and export the text detector that finds lines and words in photos and pages."""


@detector.command("train")
@click.option("--config", "-c", "config_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="TOML config (data/recipes/detector.toml is the shipped detector's).")
@click.option("--out", help="Run folder (default: the config's).")
@click.option("--steps", type=click.IntRange(1), help="Total steps of the schedule.")
@click.option("--threads", type=click.IntRange(0), help="torch CPU threads (0: torch's default).")
@click.option("--workers", type=click.IntRange(0), help="Data loader processes (0: in the training process).")
@click.option("--max-minutes", type=click.FloatRange(0), help="End this sitting after so long (checkpointed).")
@click.option("--device", help="auto (the config's default: a CUDA GPU when torch sees one), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(1), help="Images per step.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--allocator", type=click.Choice(ALLOCATORS), default="auto", show_default=True,
              help="Memory allocator, as for `ocr train`: auto uses jemalloc when installed.")
@handles_errors
def train_cmd(config_file, out, steps, threads, workers, max_minutes, device, batch_size, resume, allocator):
    """Train a detector (or continue one with --resume); SIGTERM and Ctrl-C save last.pt first."""
    from crnn_ocr.detect.train import train_detector

    allocator_in_use = use_allocator(allocator)
    overrides = {"out": out, "steps": steps, "threads": threads, "workers": workers, "max_minutes": max_minutes,
                 "device": device, "batch_size": batch_size}
    result = train_detector(config_file, resume=resume, overrides=overrides, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"out": result.out, "step": result.step, "best": result.best, "stopped": result.stopped,
                           "allocator": allocator_in_use}, default=str))


@detector.command("eval")
@click.option("--model", "-m", required=True, type=click.Path(dir_okay=False, exists=True),
              help="A detector checkpoint (.pt) or exported model (.onnx).")
@click.option("--data", "-d", "folders", multiple=True, required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder with images/ and labels.jsonl (repeatable).")
@click.option("--limit", type=click.IntRange(0), default=0, help="Score the first N images of each folder.")
@click.option("--max-side", type=click.IntRange(32), help="Inference size limit (default: the model's).")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handles_errors
def eval_cmd(model, folders, limit, max_side, threads, as_json):
    """Detection precision, recall and hmean at IoU 0.5 per level (boxes only; `ocr eval` scores the reading)."""
    from crnn_ocr.detect.evaluate import evaluate_detector

    results = [evaluate_detector(model, folder, limit=limit, max_side=max_side, threads=threads) for folder in folders]
    if as_json:
        click.echo(json.dumps(results, indent=1))
        return
    click.echo(f"{'set':<28}{'level':>6}{'P':>8}{'R':>8}{'H':>8}{'s/image':>9}")
    for r in results:
        for level, s in r["levels"].items():
            click.echo(f"{r['folder'].rstrip('/').split('/')[-1]:<28}{level:>6}{s['precision']:>8.3f}{s['recall']:>8.3f}"
                       f"{s['hmean']:>8.3f}{r['seconds_per_image']:>9.2f}")


@detector.command("average")
@click.option("--model", "-m", "models", multiple=True, required=True, type=click.Path(dir_okay=False, exists=True),
              help="A detector checkpoint (repeat: two or more of the same architecture).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The .pt file to write.")
@handles_errors
def average_cmd(models, out):
    """Write the detector whose weights are the mean of the checkpoints' (export it with `ocr detector export`)."""
    from pathlib import Path

    from crnn_ocr.detect.nets import average_detectors, save_detector

    model, cfg = average_detectors(list(models))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_detector(out, model, cfg, {"averaged": list(models)})
    click.echo(json.dumps({"out": out, "averaged": list(models)}))


@detector.command("export")
@click.option("--model", "-m", required=True, type=click.Path(dir_okay=False, exists=True), help="Detector checkpoint.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
@click.option("--int8", type=click.Choice(["static", "dynamic"]), help="Also write OUT.int8.onnx, quantized.")
@click.option("--calibration", type=click.Path(file_okay=False, exists=True),
              help="Images (a labels.jsonl folder) for static int8 calibration.")
@click.option("--max-side", type=click.IntRange(32), help="Inference size limit stored in the model.")
@handles_errors
def export_cmd(model, out, int8, calibration, max_side):
    """Export a detector checkpoint to one self-describing ONNX file, checked against torch."""
    from crnn_ocr.detect.export import export_detector

    click.echo(json.dumps(export_detector(model, out, int8=int8, calibration=calibration, max_side=max_side),
                          indent=1, default=str))
