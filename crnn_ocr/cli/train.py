"""`ocr train`, `ocr eval`, `ocr models`: train or fine-tune a recogniser, score it, list the architectures."""

from __future__ import annotations

import json

import click

from crnn_ocr.cli.common import DICTIONARY_OPTION, dictionary_for, handles_errors
from crnn_ocr.cli.recognize import load_recognizer
from crnn_ocr.train.allocator import ALLOCATORS, use_allocator


def _split_source(spec: str):
    from crnn_ocr.config import DataSource

    has_ratio = spec.count(":") == 1 and spec.rsplit(":", 1)[1].replace(".", "", 1).isdigit()
    path, _, ratio = spec.partition(":") if has_ratio else (spec, "", "")
    return DataSource(path, float(ratio) if ratio else 1.0)


@click.command()
@click.option("--config", "-c", "config_file", type=click.Path(dir_okay=False), help="TOML/YAML config; flags override it.")
@click.option("--train", "train_data", multiple=True, help="Training data (LMDB, folder, labels.tsv, or 'synth'); PATH:RATIO mixes.")
@click.option("--val", multiple=True, help="Validation data (any dataset form).")
@click.option("--out", help="Run folder (checkpoints, log.csv, curves.png).")
@click.option("--arch", help="Architecture name (see `ocr models`).")
@click.option("--height", type=int, help="Model input height.")
@click.option("--steps", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--schedule", type=click.Choice(["cosine", "onecycle", "constant"]))
@click.option("--warmup-steps", type=int)
@click.option("--val-every", type=int)
@click.option("--early-stop", type=int, help="Stop after this many validations without improvement.")
@click.option("--max-minutes", type=float, help="Stop (and checkpoint) after this much wall time.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]))
@click.option("--workers", type=int, help="Data loader processes (-1: auto).")
@click.option("--threads", type=int, help="torch CPU threads (0: default).")
@click.option("--allocator", type=click.Choice(ALLOCATORS), default="auto", show_default=True,
              help="Memory allocator: auto uses jemalloc when installed (libjemalloc2), else glibc; glibc-keep "
                   "stops glibc returning freed memory. See benchmarks/results/allocator.md.")
@click.option("--init", help="Start from this model (fine-tuning; the vocabulary may differ).")
@click.option("--freeze-cnn", is_flag=True, default=None, help="Train only the recurrent layers and the head.")
@click.option("--train-only", "train_only", multiple=True, metavar="PART",
              help="Train only this part (repeatable: rectifier, cnn, rnn, head); the rest keep their weights.")
@click.option("--vocab", help="Characters of the vocabulary, or a charset: 'default' (the shipped model's), 'latin' "
                               "(all of Latin script); default: from the data or --init.")
@click.option("--vocab-file", type=click.Path(dir_okay=False))
@click.option("--seed", type=int)
@click.option("--stop-after", type=int, help="End this sitting at this step (the schedule still spans --steps).")
@click.option("--fresh", is_flag=True, help="Start over even if the run folder holds last.pt.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def train(config_file, train_data, val, out, arch, height, steps, batch_size, lr, schedule, warmup_steps, val_every,
          early_stop, max_minutes, device, precision, workers, threads, allocator, init, freeze_cnn, train_only, vocab,
          vocab_file, seed, stop_after, fresh, quiet):
    """Train or fine-tune a model; an interrupted run continues when started again with the same --out."""
    from crnn_ocr.config import TrainConfig, load_config_file

    overrides = {
        "out": out, "steps": steps, "batch_size": batch_size, "lr": lr, "schedule": schedule,
        "warmup_steps": warmup_steps, "val_every": val_every, "early_stop": early_stop, "max_minutes": max_minutes,
        "device": device, "precision": precision, "workers": workers, "threads": threads, "init": init,
        "freeze_cnn": freeze_cnn, "train_only": list(train_only) or None, "vocab": vocab, "vocab_file": vocab_file,
        "seed": seed,
    }
    if train_data:
        overrides["train"] = [vars(_split_source(s)) for s in train_data]
    if val:
        overrides["val"] = list(val)
    model_overrides = {k: v for k, v in {"arch": arch, "height": height}.items() if v is not None}
    if config_file:
        base = load_config_file(config_file)
        if model_overrides:
            overrides["model"] = {**base.get("model", {}), **model_overrides}
        cfg = TrainConfig.from_file(config_file, overrides)
    else:
        if model_overrides:
            overrides["model"] = model_overrides
        cfg = TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    from crnn_ocr.train.loop import train as run_training

    allocator_in_use = use_allocator(allocator)
    result = run_training(cfg, progress=not quiet, resume=not fresh, log=lambda m: click.echo(m, err=True),
                          stop_after=stop_after)
    best = result.best if result.best.get("step", -1) >= 0 else None
    click.echo(json.dumps({"out": result.out, "step": result.step, "best": best, "stopped": result.stopped,
                           "allocator": allocator_in_use, "data": result.report}, default=str))


@click.command("eval")
@click.option("--model", "-m", help="Model (.onnx or .pt). Default: the shipped model.")
@click.option("--data", "-d", multiple=True, required=True, help="Labelled data (LMDB, folder, labels.tsv, .gt.txt pairs).")
@click.option("--protocol", type=click.Choice(["auto", "exact", "scene", "upper", "nocase"]), default="auto",
              show_default=True, help="auto: scene-text sets lower-case [0-9a-z], SROIE upper-case, else exact.")
@click.option("--limit", type=int, default=0, help="Score only the first N samples of each set.")
@click.option("--backend", type=click.Choice(["auto", "onnx", "torch"]), default="auto", show_default=True)
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@DICTIONARY_OPTION
@click.option("--threads", type=int, default=0)
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def eval_cmd(model, data, protocol, limit, backend, decoder, dictionary, threads, as_json, quiet):
    """Score a model: word accuracy and CER per dataset of crops, worst errors, confused characters; on folders of
    whole images with boxes (labels.jsonl), the whole pipeline: detection precision / recall / hmean, end-to-end
    hmean, bag-of-words F1 and CPU seconds per image."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.evaluate import is_scene_folder
    from crnn_ocr.train.evaluate import dataset_name, evaluate_source

    scenes = [d for d in data if is_scene_folder(d)]
    if scenes:
        if len(scenes) != len(data):
            raise click.UsageError("give either folders of whole images (labels.jsonl) or crop datasets, not both")
        return _eval_scenes(model, backend, scenes, limit, dictionary, threads, as_json, quiet)
    rec = load_recognizer(model, backend, threads, 64)
    rec.set_decoder(decoder, dictionary=dictionary_for(rec.vocab, dictionary))
    results = [evaluate_source(rec, open_source(d), protocol, limit, progress=not (as_json or quiet), name=dataset_name(d))
               for d in data]
    for r in results:
        r["decoder"], r["dictionary"] = decoder, dictionary
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=1))
        return
    click.echo(f"decoder {decoder}, dictionary {dictionary}")
    click.echo(f"{'dataset':<22}{'n':>6}{'acc':>8}{'CER':>8}  protocol {'acc':>7}{'CER':>8}")
    for r in results:
        click.echo(f"{r['name']:<22}{r['samples']:>6}{r['accuracy']:>8.3f}{r['cer']:>8.3f}  {r['protocol']:<8} "
                   f"{r['protocol_accuracy']:>7.3f}{r['protocol_cer']:>8.3f}")
    for r in results:
        if r["worst"]:
            click.echo(f"\n{r['name']}: worst errors (truth -> read)")
            for w in r["worst"][:5]:
                click.echo(f"  {w['truth']!r} -> {w['pred']!r}")
            pairs = ", ".join(f"{c['truth'] or '∅'}->{c['pred'] or '∅'} ×{c['count']}" for c in r["confusions"][:8])
            click.echo(f"  most confused: {pairs}")


def _eval_scenes(model, backend, folders, limit, dictionary, threads, as_json, quiet) -> None:
    from crnn_ocr.evaluate import evaluate_scenes
    from crnn_ocr.reader import load

    reader = load(model, backend=backend, dictionary=None if dictionary.lower() == "none" else dictionary,
                  threads=threads or 1)
    results = [evaluate_scenes(reader, folder, limit=limit, progress=not (as_json or quiet)) for folder in folders]
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=1))
        return
    click.echo(f"{'set':<24}{'level':>6}{'images':>7}{'P':>7}{'R':>7}{'H':>7}{'e2e H':>7}{'BoW F1':>8}{'CPU s':>7}")
    for r in results:
        e2e = "-" if r["e2e"]["hmean"] is None else f"{r['e2e']['hmean']:.3f}"
        bow = "-" if r["bow"]["f1"] is None else f"{r['bow']['f1']:.3f}"
        click.echo(f"{r['name']:<24}{r['level']:>6}{r['images']:>7}{r['precision']:>7.3f}{r['recall']:>7.3f}"
                   f"{r['hmean']:>7.3f}{e2e:>7}{bow:>8}{r['cpu_s_per_image']:>7.2f}")


@click.command()
@handles_errors
def models() -> None:
    """List the registered architectures with their parameter counts."""
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.models import available, create_model

    for name in available():
        n = sum(p.numel() for p in create_model(ModelConfig(arch=name), 96).parameters())
        click.echo(f"{name:<12}{n / 1e6:6.2f}M parameters")
