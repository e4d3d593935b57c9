"""The `ocr` command line. Each command parses flags, calls one library function and prints the result.

Heavy libraries (torch, onnx) are imported inside the commands that need them, so `ocr --help` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from crnn_ocr import __version__
from crnn_ocr.cli_common import fail, handles_errors
from crnn_ocr.defaults import DEFAULT_DICTIONARY
from crnn_ocr.train.allocator import ALLOCATORS, restart_train_with_jemalloc, use_allocator


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ocr")
def main() -> None:
    """crnn_ocr: read text from images, train and export CRNN models."""


def run() -> None:
    """The `ocr` executable: `ocr train` first restarts itself with jemalloc when that is installed."""
    restart_train_with_jemalloc(sys.argv)
    main()


def _load_recognizer(model: str | None, backend: str, threads: int, batch_size: int):
    from crnn_ocr.defaults import default_model

    if model is None:
        path = default_model("torch" if backend == "torch" else "onnx") or default_model("torch")
        if path is None:
            fail("no shipped model found in weights/; pass --model PATH (.onnx or .pt)")
        model = str(path)
    if backend == "auto":
        backend = "torch" if model.endswith(".pt") else "onnx"
    if backend == "torch":
        import torch

        from crnn_ocr.predictor import Recognizer

        if threads:
            torch.set_num_threads(threads)
        return Recognizer.from_checkpoint(model, batch_size=batch_size)
    from crnn_ocr.runtime import OnnxRecognizer

    return OnnxRecognizer(model, threads=threads, batch_size=batch_size)


def _read_inputs(images: tuple[str, ...], channels: int):
    """Yield (name, array or None, error) for every input; directories expand, '-' reads stdin."""
    from crnn_ocr.errors import ImageError
    from crnn_ocr.imageio import find_images, read_image

    for item in images:
        if item == "-":
            sources = [("-", sys.stdin.buffer.read())]
        else:
            p = Path(item)
            if p.is_dir():
                found = find_images([p])
                if not found:
                    yield item, None, f"{item}: no images in this folder"
                sources = [(str(f), f) for f in found]
            else:
                sources = [(item, p)]
        for name, src in sources:
            try:
                yield name, read_image(src if name != "-" else src, channels=channels), None
            except ImageError as e:
                yield name, None, str(e) if name != "-" else f"stdin: {str(e).split(': ', 1)[-1]}"


DICTIONARY_OPTION = click.option(
    "--dictionary", default=DEFAULT_DICTIONARY, show_default=True, metavar="LANG|FILE|none",
    help="Correct misread words towards this word list: a shipped language (en de fr es it pt nl), a file with "
         "one word per line, or none for the model's raw reading (codes, plates, names).")


def _dictionary_for(vocab, value: str):
    """The Dictionary `--dictionary` names for a model's vocabulary; the default is dropped, not an error, for a
    model that cannot spell its words (a digits-only model, another script)."""
    from crnn_ocr.dictionary import load_dictionary
    from crnn_ocr.errors import VocabError

    if value.lower() == "none":
        return None
    try:
        return load_dictionary(value, vocab)
    except VocabError:
        if click.get_current_context().get_parameter_source("dictionary") == click.core.ParameterSource.DEFAULT:
            return None
        raise


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "-m", help="Model file (.onnx or .pt). Default: the shipped model.")
@click.option("--backend", type=click.Choice(["auto", "onnx", "torch"]), default="auto", show_default=True)
@click.option("--layout", type=click.Choice(["auto", "page", "line", "word"]), default="auto", show_default=True,
              help="page: find and read the text lines; line/word: the image is one line/word; auto: decide.")
@click.option("--format", "output", type=click.Choice(["text", "json", "tsv", "hocr"]),
              help="Output format (default text; --json is --format json).")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per image (text, confidence, characters, lines).")
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--beam-width", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--lexicon", type=click.Path(dir_okay=False), help="Word list: output only words from it.")
@DICTIONARY_OPTION
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="CPU threads (0: library default).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--verifier", type=click.Path(dir_okay=False, exists=True),
              help="Text / non-text verifier (.onnx or .pt) that drops false line candidates on pages. "
                   "Default: the shipped weights/*verifier*.onnx.")
@click.option("--no-verifier", is_flag=True, help="Keep every line candidate found on pages.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def recognize(images, model, backend, layout, output, as_json, decoder, beam_width, lexicon, dictionary, threads,
              batch_size, verifier, no_verifier, quiet):
    """Read the text in IMAGES (files, folders, or - for stdin): word or line crops, pages, receipts, screenshots."""
    rec = _load_recognizer(model, backend, threads, batch_size)
    words = None
    if lexicon:
        try:
            words = Path(lexicon).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read lexicon {lexicon}: {e}")
    rec.set_decoder(decoder, beam_width, words, dictionary=_dictionary_for(rec.vocab, dictionary))
    from crnn_ocr.page import recognize_page_cli

    single = len(images) == 1 and images[0] != "-" and not Path(images[0]).is_dir()
    if verifier and no_verifier:
        fail("--verifier and --no-verifier exclude each other")
    text_filter = None if no_verifier else _LazyVerifier.default(verifier, threads)
    failures = recognize_page_cli(rec, _read_inputs(images, rec.cfg.channels), layout=layout,
                                  output=output or ("json" if as_json else "text"), single=single, text_filter=text_filter,
                                  progress=False if quiet else None, out=click.echo,
                                  err=lambda m: click.echo(m, err=True))
    if failures:
        sys.exit(1)


class _LazyVerifier:
    """The page filter, loaded on the first page (word and line crops never need it)."""

    def __init__(self, path: Path, threads: int):
        self.path, self.threads, self.verifier = path, threads, None

    @classmethod
    def default(cls, path: str | None, threads: int):
        from crnn_ocr.defaults import find_verifier

        found = Path(path) if path else find_verifier(".onnx")
        return cls(found, threads or 1) if found is not None else None

    def __call__(self, crops):
        if self.verifier is None:
            from crnn_ocr.runtime import load_verifier

            self.verifier = load_verifier(self.path, self.threads)
        return self.verifier(crops)


def _split_source(spec: str):
    from crnn_ocr.config import DataSource

    has_ratio = spec.count(":") == 1 and spec.rsplit(":", 1)[1].replace(".", "", 1).isdigit()
    path, _, ratio = spec.partition(":") if has_ratio else (spec, "", "")
    return DataSource(path, float(ratio) if ratio else 1.0)


@main.command()
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
@click.option("--vocab", help="Characters of the vocabulary, or 'default' (Latin); default: from the data.")
@click.option("--vocab-file", type=click.Path(dir_okay=False))
@click.option("--seed", type=int)
@click.option("--gan", "gan", type=click.Path(dir_okay=False, exists=True),
              help="GAN checkpoint (ocr gan train): pass renders through its generator on the fly.")
@click.option("--gan-prob", type=click.FloatRange(0, 1), help="Share of render samples the GAN refines (default 0.5).")
@click.option("--gan-source", "gan_sources", multiple=True,
              help="A training source of renders (its path) that the GAN may refine; 'synth' always may. Repeatable.")
@click.option("--stop-after", type=int, help="End this sitting at this step (the schedule still spans --steps).")
@click.option("--fresh", is_flag=True, help="Start over even if the run folder holds last.pt.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def train(config_file, train_data, val, out, arch, height, steps, batch_size, lr, schedule, warmup_steps, val_every,
          early_stop, max_minutes, device, precision, workers, threads, allocator, init, freeze_cnn, vocab, vocab_file, seed,
          gan, gan_prob, gan_sources, stop_after, fresh, quiet):
    """Train or fine-tune a model; an interrupted run continues when started again with the same --out."""
    from crnn_ocr.config import TrainConfig, load_config_file

    overrides = {
        "out": out, "steps": steps, "batch_size": batch_size, "lr": lr, "schedule": schedule,
        "warmup_steps": warmup_steps, "val_every": val_every, "early_stop": early_stop, "max_minutes": max_minutes,
        "device": device, "precision": precision, "workers": workers, "threads": threads, "init": init,
        "freeze_cnn": freeze_cnn, "vocab": vocab, "vocab_file": vocab_file, "seed": seed,
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
    if gan or gan_prob is not None or gan_sources:
        cfg = _with_gan(cfg, gan, gan_prob, gan_sources)
    from crnn_ocr.train.loop import train as run_training

    allocator_in_use = use_allocator(allocator)
    result = run_training(cfg, progress=not quiet, resume=not fresh, log=lambda m: click.echo(m, err=True),
                          stop_after=stop_after)
    best = result.best if result.best.get("step", -1) >= 0 else None
    click.echo(json.dumps({"out": result.out, "step": result.step, "best": best, "stopped": result.stopped,
                           "allocator": allocator_in_use, "data": result.report}, default=str))


def _with_gan(cfg, gan: str | None, gan_prob: float | None, gan_sources: tuple[str, ...]):
    """The config with the GAN flags applied: sources named by --gan-source marked, then gan/gan_prob set."""
    import dataclasses

    from crnn_ocr.errors import ConfigError

    train = [dataclasses.replace(s) for s in cfg.train]
    for name in gan_sources:
        hits = [s for s in train if s.path == name or (s.path != "synth" and Path(s.path).resolve() == Path(name).resolve())]
        if not hits:
            raise ConfigError(f"--gan-source {name}: not one of the training sources ({', '.join(s.path for s in train)})")
        for s in hits:
            s.gan = True
    changes = {"train": train}
    if gan:
        changes["gan"] = gan
    if gan_prob is not None:
        changes["gan_prob"] = gan_prob
    return dataclasses.replace(cfg, **changes)


@main.command("eval")
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
@handles_errors
def eval_cmd(model, data, protocol, limit, backend, decoder, dictionary, threads, as_json):
    """Score a model: word accuracy and CER per dataset, worst errors, confused characters."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.train.evaluate import dataset_name, evaluate_source

    rec = _load_recognizer(model, backend, threads, 64)
    rec.set_decoder(decoder, dictionary=_dictionary_for(rec.vocab, dictionary))
    results = [evaluate_source(rec, open_source(d), protocol, limit, progress=not as_json, name=dataset_name(d))
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


@main.command()
def models() -> None:
    """List the registered architectures with their parameter counts."""
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.models import available, create_model

    for name in available():
        n = sum(p.numel() for p in create_model(ModelConfig(arch=name), 96).parameters())
        click.echo(f"{name:<12}{n / 1e6:6.2f}M parameters")


@main.group()
def data() -> None:
    """Build, check and render datasets."""


@data.command()
@click.option("--count", "-n", type=click.IntRange(1), required=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=0, help="Processes (0: all cores).")
@click.option("--fonts", "font_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Font folder(s); default: system fonts plus the bundled ones.")
@click.option("--line-share", type=click.FloatRange(0, 1), default=0.35, show_default=True,
              help="Share of multi-word lines (the rest are single words/tokens).")
@click.option("--max-height", type=int, default=64, show_default=True)
@click.option("--style", type=click.Choice(["mixed", "document"]), default="mixed", show_default=True,
              help="mixed: scene, sign, receipt and screen looks; document: lines of running text as ink on paper "
                   "(scans, copies).")
@click.option("--color", is_flag=True, help="Store RGB images (default gray).")
@click.option("--gan", "gan_model", type=click.Path(dir_okay=False, exists=True), help="Refine renders with this GAN.")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@handles_errors
def synth(count, out, seed, workers, font_dirs, line_share, max_height, style, color, gan_model, overwrite, quiet):
    """Render COUNT labelled text images into an LMDB at OUT."""
    from crnn_ocr.datasets.synth import synthesize

    image_filter = None
    if gan_model:
        from crnn_ocr.gan import load_refiner

        image_filter = load_refiner(gan_model)
    n = synthesize(out, count, seed=seed, workers=workers, font_dirs=list(font_dirs) or None, overwrite=overwrite,
                   progress=not quiet, image_filter=image_filter, line_share=line_share, max_height=max_height,
                   color=color, style=style)
    click.echo(f"wrote {n} samples to {out}")
from crnn_ocr.cli_data import register as _register_data; _register_data(data)  # noqa: E402, E702, I001
from crnn_ocr.cli_export import export as _export; main.add_command(_export)  # noqa: E402, E702, I001
from crnn_ocr.cli_gan import gan as _gan; main.add_command(_gan)  # noqa: E402, E702, I001
from crnn_ocr.cli_dbn import dbn as _dbn; main.add_command(_dbn)  # noqa: E402, E702, I001
