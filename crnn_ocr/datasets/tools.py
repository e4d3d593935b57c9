"""Dataset tools behind `ocr data`: build a validated LMDB, inspect, list the charset, split train/val.

Each function works on a `Source` (see `sources.open_source`) and returns plain data; the CLI prints it.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crnn_ocr.config import ModelConfig
from crnn_ocr.datasets.lmdb_writer import LmdbWriter, is_our_lmdb
from crnn_ocr.datasets.sources import ConcatSource, FileListSource, Source
from crnn_ocr.errors import DatasetError, ImageError
from crnn_ocr.files import atomic_path, check_replaceable, is_labels_list
from crnn_ocr.image.io import read_image
from crnn_ocr.image.preprocess import output_lengths, target_width
from crnn_ocr.text.vocab import Vocab, required_frames

MAX_EXAMPLES = 5


def sample_name(source: Source, i: int) -> str:
    """A name a person can find the sample by: the image path, or `lmdb-name:image-%09d`."""
    return source.sample_name(i)


def shorten(text: str, limit: int = 60) -> str:
    """A label as it appears in reports: quoted, and cut after `limit` characters (a 1 MB label stays one line)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def frames_needed(text: str) -> int:
    """CTC frames a label needs: one per character plus a blank between equal neighbours."""
    return required_frames([ord(c) for c in text])


def frames_available(width: int, height: int, cfg: ModelConfig) -> int:
    """Output frames a (height, width) image gets once resized to the model height."""
    return int(output_lengths([target_width(height, width, cfg)], cfg)[0])


@dataclass
class SampleProblem:
    reason: str
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


def load_sample(source: Source, i: int) -> tuple[bytes, str, np.ndarray]:
    """The raw bytes, label and decoded gray image of sample i; raises SampleError with the reason."""
    name = sample_name(source, i)
    try:
        data = source.image_bytes(i)
        label = source.label(i)
    except DatasetError as e:
        raise SampleError(SampleProblem("unreadable", name, str(e))) from e
    try:
        image = read_image(data, channels=1)
    except ImageError as e:
        raise SampleError(SampleProblem("corrupt image", name, str(e).split(": ", 1)[-1])) from e
    if not label.strip():
        raise SampleError(SampleProblem("empty label", name, "empty label" if not label else "label of only spaces"))
    return data, label, image


class SampleError(Exception):
    def __init__(self, problem: SampleProblem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Tally:
    """Counts of problems by reason, with a few examples of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {reason: {"count": n, "examples": self.examples.get(reason, [])} for reason, n in self.counts.items()}


@dataclass
class BuildReport:
    out: str
    total: int = 0
    written: int = 0
    skipped: Tally = field(default_factory=Tally)
    unknown_chars: Counter = field(default_factory=Counter)  # character -> samples holding it
    unknown_samples: int = 0
    too_long: Tally = field(default_factory=Tally)
    height: int = 32

    def to_dict(self) -> dict:
        return {"out": self.out, "total": self.total, "written": self.written, "skipped": self.skipped.to_dict(),
                "unknown_chars": dict(self.unknown_chars.most_common()), "unknown_samples": self.unknown_samples,
                "too_long": self.too_long.total, "too_long_examples": self.too_long.examples.get("too long", []),
                "height": self.height}


def create_lmdb(source: Source, out: str | Path, vocab: Vocab | None = None, height: int = 32,
                on_error: str = "skip", drop_unknown: bool = False, drop_too_long: bool = False,
                overwrite: bool = False, progress: bool = False) -> BuildReport:
    """Copy `source` into a new LMDB at `out` in the CRNN layout, decoding every image to validate it.

    Unreadable or corrupt images and empty labels are skipped (or, with `on_error="fail"`, raise DatasetError
    and leave no output). Characters outside `vocab` and labels too long for their image at `height`
    (CTC needs a frame per character) are reported; they are dropped only when asked to.
    The stored bytes are the source's bytes, unchanged.

    >>> # report = create_lmdb(open_source("crops/"), "crops.lmdb", Vocab.default()); report.written
    """
    if on_error not in ("skip", "fail"):
        raise ValueError("on_error must be 'skip' or 'fail'")
    from tqdm import tqdm

    cfg = ModelConfig(height=height)
    report = BuildReport(str(out), total=len(source), height=height)
    writer = LmdbWriter(out, overwrite=overwrite, protected=source.paths())
    try:
        for i in tqdm(range(len(source)), disable=not progress, desc="create-lmdb", unit="img"):
            try:
                data, label, image = load_sample(source, i)
            except SampleError as e:
                if on_error == "fail":
                    raise DatasetError(f"{e.problem} ({e.problem.reason}); stopped, nothing written to {out}") from None
                report.skipped.add(e.problem.reason, str(e.problem))
                continue
            name = sample_name(source, i)
            unknown = vocab.unknown(label) if vocab is not None else []
            if unknown:
                report.unknown_samples += 1
                report.unknown_chars.update(unknown)
            h, w = image.shape[:2]
            need, have = frames_needed(label), frames_available(w, h, cfg)
            if need > have:
                report.too_long.add("too long", f"{name}: {shorten(label)} needs {need} frames, a {w}x{h} image gives {have}")
            if (unknown and drop_unknown) or (need > have and drop_too_long):
                report.skipped.add("outside the vocabulary" if unknown and drop_unknown else "too long for the image",
                                   f"{name}: {shorten(label)}")
                continue
            writer.add(data, label, (w, h))
            report.written += 1
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return report


def histogram(values, bins: int = 10) -> list[tuple[int, int, int]]:
    """Integer histogram: (low, high, count) rows of equal-width inclusive ranges covering the values."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return []
    lo, hi = int(values.min()), int(values.max())
    step = max(1, math.ceil((hi - lo + 1) / bins))
    counts = np.bincount((values - lo) // step, minlength=(hi - lo) // step + 1)
    return [(lo + k * step, lo + (k + 1) * step - 1, int(c)) for k, c in enumerate(counts)]


def _stats(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    return {"min": int(values.min()), "median": float(np.median(values)), "mean": round(float(values.mean()), 2),
            "max": int(values.max())}


def inspect_source(source: Source, height: int = 32, limit: int = 0, seed: int = 0, bins: int = 10,
                   progress: bool = False) -> dict:
    """Counts, charset, label-length and width histograms, corrupt and too-long samples.

    Labels are read for every sample; images are decoded for all of them, or for `limit` random ones.
    Widths are at the model `height` (what batching and CTC see).
    """
    from tqdm import tqdm

    cfg = ModelConfig(height=height)
    n = len(source)
    labels, unreadable_labels = [], 0
    for i in range(n):
        try:
            labels.append(source.label(i))
        except DatasetError:
            unreadable_labels += 1
    chars = Counter(c for t in labels for c in t)
    if limit and limit < n:
        checked = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    else:
        checked = np.arange(n)
    problems, too_long = Tally(), Tally()
    widths, heights, raw_widths = [], [], []
    for i in tqdm(checked.tolist(), disable=not progress, desc="inspect", unit="img"):
        try:
            _, label, image = load_sample(source, i)
        except SampleError as e:
            problems.add(e.problem.reason, str(e.problem))
            continue
        h, w = image.shape[:2]
        heights.append(h)
        raw_widths.append(w)
        widths.append(target_width(h, w, cfg))
        need, have = frames_needed(label), frames_available(w, h, cfg)
        if need > have:
            too_long.add("too long", f"{sample_name(source, i)}: {shorten(label)} needs {need} frames, has {have}")
    parts = source.sources if isinstance(source, ConcatSource) else [source]
    lengths = [len(t) for t in labels]
    warnings = [f"{p.name}: holds samples beyond its num-samples ({len(p)}); readers stop at that count"
                for p in parts if getattr(p, "beyond_count", False)]
    for p in parts:
        if isinstance(p, FileListSource):
            root = p.root.resolve()
            outside = [img for img, _ in p.entries if root not in img.resolve().parents]
            if outside:
                warnings.append(f"{p.name}: {len(outside)} listed image(s) outside its folder, e.g. {outside[0]}")
            seen: dict[Path, str] = {}
            conflicts = duplicates = 0
            for img, text in p.entries:
                key = img.resolve()
                if key in seen:
                    duplicates += 1
                    conflicts += seen[key] != text
                seen.setdefault(key, text)
            if duplicates:
                warnings.append(f"{p.name}: {duplicates} image(s) listed more than once, {conflicts} with another label")
    return {
        "name": source.name,
        "samples": n,
        "parts": [{"name": s.name, "samples": len(s)} for s in parts],
        "checked": int(len(checked)),
        "corrupt": problems.counts["corrupt image"] + problems.counts["unreadable"],
        "empty_labels": sum(1 for t in labels if not t.strip()),
        "warnings": warnings,
        "unreadable_labels": unreadable_labels,
        "problems": problems.to_dict(),
        "too_long": too_long.total,
        "too_long_examples": too_long.examples.get("too long", []),
        "height": height,
        "charset": "".join(sorted(chars)),
        "char_counts": dict(chars.most_common()),
        "label_length": {**_stats(lengths), "histogram": histogram(lengths, bins)},
        "width": {**_stats(widths), "histogram": histogram(widths, bins)},
        "image_size": {"width": _stats(raw_widths), "height": _stats(heights)},
    }


def sample_grid(source: Source, out: str | Path, count: int = 32, seed: int = 0, row_height: int = 32,
                max_image_width: int = 384) -> list[int]:
    """Write a PNG of `count` random samples, each with its label drawn beside it; returns their indices.

    A sample that cannot be decoded is drawn as a red box with the reason, so it is seen, not hidden.
    """
    from PIL import Image, ImageDraw

    n = len(source)
    if n == 0:
        raise DatasetError(f"{source.name}: no samples to draw")
    picks = sorted(np.random.default_rng(seed).choice(n, size=min(count, n), replace=False).tolist())
    font = _label_font(int(row_height * 0.6))
    rows = []
    for i in picks:
        try:
            label = source.label(i)
        except DatasetError:
            label = "<unreadable label>"
        try:
            image = Image.fromarray(read_image(source.image_bytes(i), channels=3))
            scale = min(row_height / image.height, max_image_width / image.width)  # keep the aspect ratio
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.BILINEAR)
            ok = True
        except (ImageError, DatasetError):
            image, ok = Image.new("RGB", (row_height * 2, row_height), (255, 200, 200)), False
        text = label if ok else f"[corrupt] {label}"
        rows.append((image, text, ok))
    gap = 8
    image_col = max(im.width for im, _, _ in rows)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_col = min(600, max(int(probe.textlength(t, font=font)) for _, t, _ in rows) + gap)
    per_col = min(len(rows), 16)
    ncols = -(-len(rows) // per_col)
    cell_w, cell_h = image_col + gap + text_col, row_height + gap
    grid = Image.new("RGB", (ncols * cell_w + gap, per_col * cell_h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for k, (image, text, ok) in enumerate(rows):
        x, y = gap + (k // per_col) * cell_w, gap + (k % per_col) * cell_h
        top = y + (row_height - image.height) // 2
        grid.paste(image, (x, top))
        draw.rectangle((x - 1, top - 1, x + image.width, top + image.height), outline=(160, 160, 160) if ok else (220, 0, 0))
        draw.text((x + image_col + gap, y + row_height // 2), text, fill=(0, 0, 0) if ok else (200, 0, 0), font=font,
                  anchor="lm")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return picks


def _label_font(size: int):
    from PIL import ImageFont

    from crnn_ocr.datasets.synth.fonts import BUNDLED_FONT_DIR

    path = BUNDLED_FONT_DIR / "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default(size)


def char_counts(source: Source) -> Counter:
    """How often each character occurs in the labels (NFC)."""
    counts: Counter = Counter()
    for i in range(len(source)):
        counts.update(unicodedata.normalize("NFC", source.label(i)))
    return counts


def write_vocab(chars: str, path: str | Path) -> str:
    """Write a vocabulary file (one character per line, as `Vocab.from_file` reads it); control characters are
    left out. Returns the characters written."""
    kept = "".join(c for c in chars if unicodedata.category(c) not in ("Cc", "Cs"))
    Vocab(kept)  # validates: no duplicates, not empty
    Path(path).write_text("".join(c + "\n" for c in kept), encoding="utf-8")
    return kept


@dataclass
class SplitReport:
    train: str
    val: str
    train_count: int
    val_count: int
    skipped: Tally = field(default_factory=Tally)


def split_indices(n: int, val: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/val index split, each part in the original order. `val` < 1 is a share, >= 1 a count."""
    if n < 2:
        raise DatasetError(f"cannot split {n} sample(s) into train and val")
    n_val = int(val) if val >= 1 else int(round(val * n))
    n_val = min(max(n_val, 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_dataset(source: Source, out_dir: str | Path, val: float = 0.1, seed: int = 0,
                  overwrite: bool = False) -> SplitReport:
    """Split into train and val: `train.tsv`/`val.tsv` (paths relative to `out_dir`) for image-file datasets,
    `train.lmdb`/`val.lmdb` (bytes copied unchanged) for LMDBs."""
    out_dir = Path(out_dir)
    train_idx, val_idx = split_indices(len(source), val, seed)
    files = isinstance(source, FileListSource)
    names = [out_dir / f"{part}.{'tsv' if files else 'lmdb'}" for part in ("train", "val")]
    for p in names:
        check_replaceable(p, overwrite, is_labels_list if files else is_our_lmdb,
                          "a labels list" if files else "an LMDB", source.paths())
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped = Tally()
    counts = []
    for path, idx in zip(names, (train_idx, val_idx)):
        if files:
            counts.append(_write_tsv(source, idx, path, skipped))
        else:
            counts.append(_copy_lmdb(source, idx, path, skipped))
    return SplitReport(str(names[0]), str(names[1]), counts[0], counts[1], skipped)


def _write_tsv(source: FileListSource, idx: np.ndarray, path: Path, skipped: Tally) -> int:
    lines = []
    base = path.parent.resolve()
    for i in idx.tolist():
        image, label = source.entries[i]
        if "\n" in label or "\r" in label:
            skipped.add("line break in label", f"{sample_name(source, i)}: {shorten(label)}")
            continue
        lines.append(f"{Path(os.path.relpath(image.resolve(), base)).as_posix()}\t{label}\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def _copy_lmdb(source: Source, idx: np.ndarray, path: Path, skipped: Tally) -> int:
    sizes = source.sizes()
    written = 0
    with LmdbWriter(path, overwrite=True, protected=source.paths()) as writer:
        for i in idx.tolist():
            try:
                data, label = source.image_bytes(i), source.label(i)
            except DatasetError as e:
                skipped.add("unreadable", str(e))
                continue
            writer.add(data, label, (int(sizes[i, 0]), int(sizes[i, 1])))
            written += 1
    return written
