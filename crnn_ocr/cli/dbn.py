"""`ocr dbn`: train and evaluate the text / non-text verifier (DBN, perceptron, MLP).

Registered on the `ocr` group in `crnn_ocr.cli`. torch is imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from crnn_ocr.cli.common import fail, handles_errors

DEFAULT_OUT = "weights/text_verifier.pt"


def _recipe_options(command):
    """Options shared by `train` and `eval`: the data and the networks."""
    options = [
        click.option("--text", "n_text", type=click.IntRange(1), default=8000, show_default=True,
                     help="Training patches of text."),
        click.option("--clutter", "n_clutter", type=click.IntRange(1), default=8000, show_default=True,
                     help="Training patches of non-text clutter."),
        click.option("--real", "real", multiple=True, type=click.Path(file_okay=False, exists=True),
                     help="Folder of real labelled crops (labels.tsv) for text patches; repeatable. "
                          "Default: ../shared/train/sroie_train and iiit5k_train when present."),
        click.option("--no-real", is_flag=True, help="Rendered text only."),
        click.option("--real-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Share of the text patches taken from real crops."),
        click.option("--font-dir", "font_dirs", multiple=True, help="Font folder for rendering (default: system + bundled)."),
        click.option("--hidden", default="256,64", show_default=True, help="Hidden layer widths, comma-separated."),
        click.option("--visible", type=click.Choice(["bernoulli", "gaussian"]), default="bernoulli", show_default=True,
                     help="Visible units of the first RBM."),
        click.option("--pretrain-epochs", type=click.IntRange(0), default=10, show_default=True),
        click.option("--cd-k", "k", type=click.IntRange(1), default=1, show_default=True, help="Gibbs steps of CD-k."),
        click.option("--pcd", is_flag=True, help="Persistent contrastive divergence instead of CD."),
        click.option("--finetune-epochs", type=click.IntRange(0), default=30, show_default=True),
        click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
                     help="Adam learning rate of fine-tuning and of the MLP."),
        click.option("--target-recall", type=click.FloatRange(0, 1, min_open=True), default=0.98, show_default=True,
                     help="The threshold keeps this share of validation text."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--threads", type=click.IntRange(1), default=1, show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _recipe(n_text, n_clutter, real, no_real, real_share, font_dirs, hidden, visible, pretrain_epochs, k, pcd,
            finetune_epochs, lr, target_recall, seed):
    from crnn_ocr.dbn.data import default_real_folders
    from crnn_ocr.dbn.experiment import Recipe

    try:
        widths = [int(w) for w in hidden.split(",") if w.strip()]
    except ValueError:
        fail(f"--hidden must be comma-separated integers, got {hidden!r}")
    if no_real:
        folders: list[str] = []
    elif real:
        folders = list(real)
    else:
        folders = [str(p) for p in default_real_folders() if p.name in DEFAULT_REAL]
    return Recipe(n_text=n_text, n_clutter=n_clutter, real_share=real_share if folders else 0.0, real_folders=folders,
                  font_dirs=list(font_dirs), hidden=widths, visible=visible, pretrain_epochs=pretrain_epochs, k=k,
                  persistent=pcd, finetune_epochs=finetune_epochs, lr=lr, target_recall=target_recall, seed=seed)


DEFAULT_REAL = ("sroie_train", "iiit5k_train")


@click.group()
def dbn() -> None:
    """Deep belief networks and perceptrons: the text / non-text verifier of the page pipeline."""


@dbn.command()
@click.option("--out", "-o", default=DEFAULT_OUT, show_default=True, type=click.Path(dir_okay=False),
              help="Verifier file to write (.pt).")
@click.option("--model", "kind", type=click.Choice(["dbn", "mlp", "perceptron"]), default="dbn", show_default=True)
@_recipe_options
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@handles_errors
def train(out, kind, n_text, n_clutter, real, no_real, real_share, font_dirs, hidden, visible, pretrain_epochs, k, pcd,
          finetune_epochs, lr, target_recall, seed, threads, as_json, quiet):
    """Train the text / non-text verifier on rendered text, real crops and rendered clutter; write it to OUT."""
    if not out.endswith(".pt"):
        fail(f"{out}: the verifier file must end in .pt")
    import torch

    from crnn_ocr.dbn.experiment import train_verifier

    torch.set_num_threads(threads)
    recipe = _recipe(n_text, n_clutter, real, no_real, real_share, font_dirs, hidden, visible, pretrain_epochs, k, pcd,
                     finetune_epochs, lr, target_recall, seed)
    log = None if quiet or as_json else (lambda m: click.echo(m, err=True))
    verifier, report = train_verifier(recipe, kind, log=log)
    verifier.save(out)
    onnx_out = str(Path(out).with_suffix(".onnx"))
    verifier.export_onnx(onnx_out)
    report["out"], report["onnx"] = out, onnx_out
    report["size_bytes"] = Path(out).stat().st_size
    if as_json:
        click.echo(json.dumps(report, indent=1, default=str))
        return
    v = report["validation"]["crop"]
    click.echo(f"wrote {out} and {onnx_out} ({report['size_bytes'] / 1e6:.2f} MB, {kind}, threshold {verifier.threshold:.3f}); "
               f"validation crops: precision {v['precision']:.3f}, recall {v['recall']:.3f}; "
               f"{report['cpu_seconds']:.0f} CPU s")


@dbn.command()
@click.argument("verifier", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="ONNX file to write (default: VERIFIER with .onnx).")
@handles_errors
def export(verifier, out):
    """Write VERIFIER (.pt) as ONNX, which `ocr recognize` runs on pages without torch; checks both agree."""
    import numpy as np

    from crnn_ocr.dbn.verifier import TextVerifier
    from crnn_ocr.page.verifier import OnnxTextVerifier

    out = out or str(Path(verifier).with_suffix(".onnx"))
    if not out.endswith(".onnx"):
        fail(f"{out}: the exported verifier must end in .onnx")
    v = TextVerifier.load(verifier)
    v.export_onnx(out)
    patches = np.random.default_rng(0).random((32, v.height * v.width), dtype=np.float32)
    diff = float(np.abs(OnnxTextVerifier(out).patch_scores(patches) - v.patch_scores(patches)).max())
    if diff > 1e-4:
        fail(f"{out}: ONNX and torch verifiers disagree (max |diff| {diff:.2e})")
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.2f} MB, threshold {v.threshold:.3f}); "
               f"max |diff| vs torch on 32 patches: {diff:.1e}")


@dbn.command("eval")
@click.option("--models", default="dbn,dbn_random,perceptron,mlp", show_default=True,
              help="Models to train and compare, comma-separated (dbn, dbn_random, perceptron, mlp).")
@click.option("--test", "n_test", type=click.IntRange(0), default=0,
              help="Held-out test crops of each class (default: a quarter of --text).")
@click.option("--verifier", type=click.Path(dir_okay=False, exists=True),
              help="Also score this saved verifier on the same held-out crops.")
@_recipe_options
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@handles_errors
def eval_cmd(models, n_test, verifier, n_text, n_clutter, real, no_real, real_share, font_dirs, hidden, visible,
             pretrain_epochs, k, pcd, finetune_epochs, lr, target_recall, seed, threads, as_json, quiet):
    """Held-out precision and recall (text = positive) of the DBN, the same network from random init, the
    perceptron and the MLP, all trained on the same data."""
    import torch

    from crnn_ocr.dbn.experiment import MODELS, compare_models

    torch.set_num_threads(threads)
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        fail(f"unknown model(s) {', '.join(unknown) or '(none)'}; expected some of {', '.join(MODELS)}")
    recipe = _recipe(n_text, n_clutter, real, no_real, real_share, font_dirs, hidden, visible, pretrain_epochs, k, pcd,
                     finetune_epochs, lr, target_recall, seed)
    log = None if quiet or as_json else (lambda m: click.echo(m, err=True))
    report = compare_models(recipe, names, n_test=n_test, log=log, saved=verifier)
    if as_json:
        click.echo(json.dumps(report, indent=1, default=str))
        return
    click.echo(format_comparison(report))


def format_comparison(report: dict) -> str:
    """The comparison as a Markdown table: held-out crops, at 0.5 and at the validation threshold."""
    lines = ["| model | precision @0.5 | recall @0.5 | F1 @0.5 | ROC AUC | threshold (val) | precision | recall | "
             "patch accuracy @0.5 | train CPU s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in report["results"].items():
        a, b = r["at_0.5"], r["at_val_threshold"]
        lines.append(f"| {name} | {a['crop']['precision']:.3f} | {a['crop']['recall']:.3f} | {a['crop']['f1']:.3f} | "
                     f"{a['crop']['auc']:.3f} | {b['threshold']:.3f} | {b['crop']['precision']:.3f} | "
                     f"{b['crop']['recall']:.3f} | {a['patch']['accuracy']:.3f} | {r['training'].get('train_cpu_s', 0):.0f} |")
    lines += ["", "Share of held-out crops kept at 0.5, by source:", "",
              "| model | " + " | ".join(report["test_counts"]) + " |",
              "| --- | " + " | ".join("---:" for _ in report["test_counts"]) + " |"]
    for name, r in report["results"].items():
        kept = r["at_0.5"]["kept_by_source"]
        lines.append(f"| {name} | " + " | ".join(f"{kept.get(s, 0):.2f}" for s in report["test_counts"]) + " |")
    lines.append("")
    lines.append("test crops: " + ", ".join(f"{k} {v}" for k, v in report["test_counts"].items()))
    return "\n".join(lines)


@dbn.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--verifier", type=click.Path(dir_okay=False, exists=True),
              help="Verifier file, .pt or .onnx (default: the shipped weights/*verifier*.pt).")
@handles_errors
def score(images, verifier):
    """Print the text probability and keep/drop decision of each image (a line or region crop)."""
    from crnn_ocr.cli.common import load_verifier_file
    from crnn_ocr.dbn.verifier import default_verifier_path
    from crnn_ocr.image.io import read_image

    path = verifier or default_verifier_path()
    if path is None:
        fail("no verifier: pass --verifier or train one with `ocr dbn train`")
    v = load_verifier_file(path)
    crops = [read_image(p) for p in images]
    for name, s in zip(images, v.scores(crops)):
        click.echo(f"{name}\t{s:.3f}\t{'text' if s >= v.threshold else 'non-text'}")
