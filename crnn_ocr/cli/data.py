"""`ocr data synth | create-lmdb | inspect | charset | split`: render, build, look at and divide datasets.

The work is done by `crnn_ocr.datasets`, imported inside the commands so that `ocr --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from crnn_ocr.cli.common import fail, handles_errors


def _vocab(vocab: str | None, vocab_file: str | None):
    if vocab and vocab_file:
        fail("give --vocab or --vocab-file, not both")
    from crnn_ocr.text.vocab import Vocab, named_charset

    if vocab_file:
        return Vocab.from_file(vocab_file)
    return Vocab(named_charset(vocab) or vocab) if vocab else None


def _bar(count: int, top: int, width: int = 40) -> str:
    return "#" * (max(1, round(width * count / top)) if count else 0)


def _echo_histogram(title: str, rows: list) -> None:
    click.echo(title)
    top = max((c for _, _, c in rows), default=0)
    for lo, hi, count in rows:
        span = f"{lo}" if lo == hi else f"{lo}-{hi}"
        click.echo(f"  {span:>11} {count:>8}  {_bar(count, top)}")


def _show_chars(chars: str) -> str:
    """Characters on one line; control characters written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in chars)


@click.command()
@click.option("--count", "-n", type=click.IntRange(1), required=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=0, help="Processes (0: all cores).")
@click.option("--fonts", "font_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Font folder(s); default: system fonts plus the bundled ones.")
@click.option("--line-share", type=click.FloatRange(0, 1), default=0.35, show_default=True,
              help="Share of multi-word lines (the rest are single words/tokens).")
@click.option("--max-height", type=int, default=64, show_default=True)
@click.option("--style", type=click.Choice(["mixed", "document", "codes", "scene", "page"]), default="mixed",
              show_default=True,
              help="Crops for the recogniser (an LMDB): mixed (scene, sign, receipt and screen looks), document "
                   "(running text as ink on paper) or codes (licence plates, IBANs, VINs, serial and part numbers, "
                   "barcode digits, MAC addresses, postcodes, on plates, labels and signs). Whole images for the "
                   "detector (a folder of images/ and labels.jsonl with word and line boxes): scene (text placed into "
                   "photos) or page (documents of several columns, tables, receipts; some turned 90/180/270 degrees).")
@click.option("--photos", type=click.Path(file_okay=False, exists=True),
              help="scene: photos with boxes (labels.jsonl) whose text is painted out to make backgrounds; "
                   "default ../shared/train/scenes/msra_td500_train when present, else generated backgrounds.")
@click.option("--color", is_flag=True, help="Store RGB crops (default gray).")
@click.option("--charset", type=click.Choice(["default", "latin"]), default="default", show_default=True,
              help="Crops: the characters texts may use: the shipped model's (English, German, French, Spanish, "
                   "Italian, Portuguese, Dutch), or all of Latin script (adds Latin Extended-A and 16 languages).")
@click.option("--languages", help="Crops: comma-separated word-list languages (default: every one the charset "
                                  "writes; see data/words).")
@click.option("--curved", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Crops: share bent along an arch or bowl, strongly waved or seen in steep perspective (for a "
                   "recogniser with `rectify = \"tps\"`).")
@click.option("--cjk-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="scene: share of text written in Chinese, Japanese or Korean (boxes only: teaches the detector "
                   "to find lines the recogniser cannot read; needs a CJK font such as fonts-noto-cjk).")
@click.option("--sign-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="scene: share of images with one or two signs: one or two words up to two thirds of the image "
                   "height, letters often spaced wide (shop signs, banners, logos).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if crnn_ocr wrote it.")
@click.option("--quiet", "-q", is_flag=True)
@handles_errors
def synth(count, out, seed, workers, font_dirs, line_share, max_height, style, photos, color, charset, languages,
          curved, cjk_share, sign_share, overwrite, quiet):
    """Render COUNT labelled images into OUT: text crops (an LMDB) or whole scenes and pages (a folder)."""
    fonts = list(font_dirs) or None
    if cjk_share and style != "scene":
        fail("--cjk-share applies to --style scene only")
    if sign_share and style != "scene":
        fail("--sign-share applies to --style scene only")
    if style in ("scene", "page"):
        from crnn_ocr.detect.synth import DEFAULT_PHOTOS, synthesize_scenes

        source = photos or (DEFAULT_PHOTOS if DEFAULT_PHOTOS is not None and Path(DEFAULT_PHOTOS).is_dir() else None)
        n = synthesize_scenes(out, count, seed=seed, style=style, font_dirs=fonts, workers=workers,
                              progress=not quiet, overwrite=overwrite, photos=source, cjk_share=cjk_share,
                              sign_share=sign_share)
        click.echo(f"wrote {n} {style} images to {out}")
        return
    from crnn_ocr.datasets.synth import synthesize
    from crnn_ocr.datasets.synth.text import LANGUAGES
    from crnn_ocr.text.vocab import named_charset

    chosen = tuple(lang.strip() for lang in languages.split(",") if lang.strip()) if languages else None
    unknown = [lang for lang in chosen or () if lang not in LANGUAGES]
    if unknown:
        fail(f"no word list for {', '.join(unknown)}; choose from {', '.join(LANGUAGES)}")
    n = synthesize(out, count, seed=seed, workers=workers, font_dirs=fonts, overwrite=overwrite,
                   progress=not quiet, line_share=line_share, max_height=max_height, color=color, style=style,
                   charset=named_charset(charset), languages=chosen, curved=curved)
    click.echo(f"wrote {n} samples to {out}")


@click.command("create-lmdb")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", "-o", required=True, type=click.Path(), help="The LMDB folder to write.")
@click.option("--vocab", help="Report characters outside these characters ('default': the shipped model's; 'latin': all of Latin script).")
@click.option("--vocab-file", type=click.Path(dir_okay=False, exists=True), help="Vocabulary file (see `ocr data charset --out`).")
@click.option("--height", type=click.Choice(["16", "32", "48", "64"]), default="32", show_default=True,
              help="Model height, to report labels too long for their image (CTC needs a frame per character).")
@click.option("--on-error", type=click.Choice(["skip", "fail"]), default="skip", show_default=True,
              help="A corrupt image or empty label: skip it (and report), or stop with an error and write nothing.")
@click.option("--drop-unknown", is_flag=True, help="Leave out samples with characters outside the vocabulary.")
@click.option("--drop-too-long", is_flag=True, help="Leave out labels too long for their image.")
@click.option("--overwrite", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def create_lmdb(source, out, vocab, vocab_file, height, on_error, drop_unknown, drop_too_long, overwrite, as_json, quiet):
    """Copy SOURCE (a folder with labels.tsv or .gt.txt pairs, a .tsv, or an LMDB) into a validated LMDB.

    Every image is decoded; unreadable ones are skipped and reported. The LMDB uses the CRNN /
    deep-text-recognition-benchmark layout, so those tools read it too.
    """
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.datasets.tools import create_lmdb as build

    voc = _vocab(vocab, vocab_file)
    if drop_unknown and voc is None:
        fail("--drop-unknown needs --vocab or --vocab-file")
    report = build(open_source(source), out, voc, int(height), on_error, drop_unknown, drop_too_long, overwrite,
                   progress=not quiet and not as_json)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    click.echo(f"wrote {report.written} of {report.total} samples to {out}")
    if report.skipped.total:
        reasons = ", ".join(f"{r} {n}" for r, n in report.skipped.counts.most_common())
        click.echo(f"skipped {report.skipped.total}: {reasons}")
        for reason, examples in report.skipped.examples.items():
            for e in examples:
                click.echo(f"  {reason}: {e}")
    if voc is not None:
        if report.unknown_chars:
            shown = ", ".join(f"{c!r} ({n})" for c, n in report.unknown_chars.most_common(40))
            click.echo(f"{report.unknown_samples} samples hold characters outside the vocabulary "
                       f"(character (samples holding it)): {shown}")
        else:
            click.echo("every character is in the vocabulary")
    if report.too_long.total:
        click.echo(f"labels too long for their image at height {height}: {report.too_long.total}")
        for e in report.too_long.examples.get("too long", []):
            click.echo(f"  {e}")


@click.command("inspect")
@click.argument("datasets", nargs=-1, required=True)
@click.option("--height", type=click.Choice(["16", "32", "48", "64"]), default="32", show_default=True,
              help="Model height: widths are shown resized to it, and labels too long for it are counted.")
@click.option("--limit", type=click.IntRange(0), default=0, help="Decode only this many random images (0: all).")
@click.option("--grid", type=click.Path(dir_okay=False), help="Write a PNG of random samples with their labels.")
@click.option("--grid-count", type=click.IntRange(1, 256), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--bins", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def inspect_cmd(datasets, height, limit, grid, grid_count, seed, bins, as_json, quiet):
    """Counts, charset, label-length and width histograms, corrupt samples of DATASETS (read together)."""
    from crnn_ocr.datasets.sources import open_sources
    from crnn_ocr.datasets.tools import inspect_source, sample_grid

    source = open_sources(list(datasets))
    info = inspect_source(source, int(height), limit, seed, bins, progress=not quiet and not as_json)
    if grid:
        info["grid"] = {"path": grid, "indices": sample_grid(source, grid, grid_count, seed)}
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
        return
    click.echo(f"{info['name']}: {info['samples']} samples")
    for warning in info["warnings"]:
        click.echo(f"warning: {warning}")
    if len(info["parts"]) > 1:
        for part in info["parts"]:
            click.echo(f"  {part['name']}: {part['samples']}")
    click.echo(f"images decoded: {info['checked']}, corrupt or unreadable: {info['corrupt']}")
    for reason, entry in info["problems"].items():
        for e in entry["examples"]:
            click.echo(f"  {reason}: {e}")
    if info["empty_labels"] or info["unreadable_labels"]:
        click.echo(f"empty labels: {info['empty_labels']}, unreadable labels: {info['unreadable_labels']}")
    click.echo(f"labels too long for their image at height {height}: {info['too_long']}")
    for e in info["too_long_examples"]:
        click.echo(f"  {e}")
    click.echo(f"charset ({len(info['charset'])}): {_show_chars(info['charset'])}")
    size = info["image_size"]
    click.echo(f"image width {size['width']['min']}..{size['width']['max']} (median {size['width']['median']:g}), "
               f"height {size['height']['min']}..{size['height']['max']} (median {size['height']['median']:g})")
    ll = info["label_length"]
    _echo_histogram(f"label length (min {ll['min']}, median {ll['median']:g}, max {ll['max']}):", ll["histogram"])
    wd = info["width"]
    _echo_histogram(f"width at height {height} (min {wd['min']}, median {wd['median']:g}, max {wd['max']}):",
                    wd["histogram"])
    if grid:
        click.echo(f"wrote a grid of {len(info['grid']['indices'])} samples to {grid}")


@click.command("charset")
@click.argument("datasets", nargs=-1, required=True)
@click.option("--counts", is_flag=True, help="One character per line with its count, most frequent first.")
@click.option("--min-count", type=click.IntRange(1), default=1, show_default=True,
              help="Leave out characters seen fewer times.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write a vocabulary file (for `ocr train --vocab-file`).")
@handles_errors
def charset(datasets, counts, min_count, out):
    """The characters used by the labels of DATASETS."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.datasets.tools import char_counts, write_vocab

    total = char_counts(open_source(datasets[0]))
    for d in datasets[1:]:
        total.update(char_counts(open_source(d)))
    kept = {c: n for c, n in total.items() if n >= min_count}
    chars = "".join(sorted(kept))
    if counts:
        for c, n in sorted(kept.items(), key=lambda kv: (-kv[1], kv[0])):
            click.echo(f"{c!r}\tU+{ord(c):04X}\t{n}")
    else:
        click.echo(chars)
    if out:
        written = write_vocab(chars, out)
        dropped = len(chars) - len(written)
        note = f" (left out {dropped} control character(s))" if dropped else ""
        click.echo(f"wrote {len(written)} characters to {out}{note}", err=True)


@click.command("split")
@click.argument("dataset")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for train/val: .tsv files for image folders, .lmdb for LMDBs.")
@click.option("--val", type=click.FloatRange(0, min_open=True), default=0.1, show_default=True,
              help="Validation share (below 1) or number of samples (1 and above).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True)
@handles_errors
def split(dataset, out_dir, val, seed, overwrite):
    """Split DATASET at random into train and val parts (same seed, same split)."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.datasets.tools import split_dataset

    report = split_dataset(open_source(dataset), out_dir, val, seed, overwrite)
    click.echo(f"train: {report.train_count} -> {report.train}")
    click.echo(f"val: {report.val_count} -> {report.val}")
    if report.skipped.total:
        click.echo(f"skipped {report.skipped.total}:")
        for reason, examples in report.skipped.examples.items():
            for e in examples:
                click.echo(f"  {reason}: {e}")


@click.group()
def data() -> None:
    """Build, check and render datasets."""


for _command in (synth, create_lmdb, inspect_cmd, charset, split):
    data.add_command(_command)

