"""Scoring whole-image text detection and end-to-end reading: the ICDAR protocol. Torch-free.

Detection: predictions and ground-truth regions are matched one to one, greedily by polygon IoU (highest
first), a pair counting when its IoU is at least `iou` (0.5). A matched prediction is a true positive, an
unmatched one a false positive and an unmatched ground-truth region a miss, with two exceptions for `ignore`
(don't-care) regions: they are never misses, and an unmatched prediction whose area lies at least half inside
the ignore regions counts neither way (matching is done first, so a prediction that matches a region to be
found counts even where it overlaps a don't-care one).

End to end: a match is correct only when the texts are equal after lower-casing and keeping only [0-9a-z]
(`crnn_ocr.text.metrics.normalize_scene`); a prediction without text is never correct. An image is scored end
to end only when every one of its regions to be found has a transcription: images with a `text: null` region
are left out of the end-to-end and bag-of-words counts (`e2e.skipped_images` counts them). When the images
scored end to end hold no transcribed region at all (MSRA-TD500 has no transcriptions), or no prediction
carries a text, `score_dataset` gives no end-to-end or bag-of-words rates and says why ("skipped").

Bag of words: the words (split at white space, normalised as above, empty ones dropped) of the predicted texts
against those of the ground-truth texts, as multisets; summed over a dataset and reported as F1. Predictions
that count neither way (inside ignore regions) and ignore regions' texts take no part.

Counts sum over images (`DetectionCounts.__add__`), so precision, recall and their harmonic mean (hmean) are
micro-averages over a dataset. A ratio with an empty denominator is 1.0 (nothing predicted: no false claims;
nothing to find: nothing missed).

>>> truth = [{"quad": [[0, 0], [100, 0], [100, 20], [0, 20]], "text": "Hello!", "level": "word", "ignore": False}]
>>> counts = score_detections([([[2, 1], [101, 1], [101, 21], [2, 21]], "hello")], truth)
>>> (counts.tp, counts.fp, counts.fn, counts.e2e_tp, counts.hmean)
(1, 0, 0, 1, 1.0)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from crnn_ocr.detect.config import LEVELS
from crnn_ocr.errors import ConfigError, DatasetError
from crnn_ocr.text.metrics import normalize_scene

IGNORE_AREA = 0.5  # an unmatched prediction this much inside ignore regions counts neither way
LABELS_FILE = "labels.jsonl"


def precision(tp: int, fp: int) -> float:
    """tp / (tp + fp); 1.0 when nothing was predicted."""
    return tp / (tp + fp) if tp + fp else 1.0


def recall(tp: int, fn: int) -> float:
    """tp / (tp + fn); 1.0 when there was nothing to find."""
    return tp / (tp + fn) if tp + fn else 1.0


def hmean(p: float, r: float) -> float:
    """Harmonic mean of precision and recall (F1); 0.0 when both are 0.

    >>> hmean(1.0, 0.5)
    0.6666666666666666
    """
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Match:
    """One matched pair: indexes into the image's predictions and ground-truth regions (as given)."""

    prediction: int
    truth: int
    iou: float
    text_correct: bool


@dataclass
class DetectionCounts:
    """Counts of one image or, summed with `+`, of a dataset.

    Attributes:
        tp, fp, fn: detection hits, false alarms and misses.
        e2e_tp, e2e_fp, e2e_fn: the same where a hit also needs the right text (end-to-end images only).
        bow_tp, bow_predicted, bow_truth: common words, predicted words and ground-truth words (multisets).
        images: images scored.
        e2e_images: images scored end to end (every region to be found has a transcription).
        texted_predictions: predictions that carry a text (those counting neither way excluded).
        matches: the matched pairs of a single image (empty after summing).
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    e2e_tp: int = 0
    e2e_fp: int = 0
    e2e_fn: int = 0
    bow_tp: int = 0
    bow_predicted: int = 0
    bow_truth: int = 0
    images: int = 0
    e2e_images: int = 0
    texted_predictions: int = 0
    matches: list[Match] = field(default_factory=list, compare=False, repr=False)

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "matches"}
        return DetectionCounts(**summed)

    @property
    def precision(self) -> float:
        return precision(self.tp, self.fp)

    @property
    def recall(self) -> float:
        return recall(self.tp, self.fn)

    @property
    def hmean(self) -> float:
        return hmean(self.precision, self.recall)

    @property
    def e2e_precision(self) -> float:
        return precision(self.e2e_tp, self.e2e_fp)

    @property
    def e2e_recall(self) -> float:
        return recall(self.e2e_tp, self.e2e_fn)

    @property
    def e2e_hmean(self) -> float:
        return hmean(self.e2e_precision, self.e2e_recall)

    @property
    def bow_precision(self) -> float:
        return precision(self.bow_tp, self.bow_predicted - self.bow_tp)

    @property
    def bow_recall(self) -> float:
        return recall(self.bow_tp, self.bow_truth - self.bow_tp)

    @property
    def bow_f1(self) -> float:
        return 2 * self.bow_tp / (self.bow_predicted + self.bow_truth) if self.bow_predicted + self.bow_truth else 1.0


def polygon(points: Any) -> BaseGeometry:
    """A shapely polygon of `points` ((N, 2), N >= 3). A self-intersecting one (two corners of a quad swapped)
    becomes its convex hull, the box it spans; a degenerate one (too few or collinear points) has no area."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0 or not np.isfinite(pts).all():
        return Polygon()
    if len(pts) < 3:
        return shapely.MultiPoint(pts).convex_hull
    poly = Polygon(pts)
    return poly if poly.is_valid else poly.convex_hull


def _prediction(item: Any) -> tuple[Any, str | None]:
    """(points, text) of one prediction: a quad, a (quad, text) pair or a mapping with "quad" and "text"."""
    if isinstance(item, Mapping):
        return item["quad"], item.get("text")
    if isinstance(item, (tuple, list)) and len(item) == 2 and (item[1] is None or isinstance(item[1], str)):
        return item[0], item[1]
    return item, None


def _bag(texts: Iterable[str | None]) -> Counter:
    return Counter(w for t in texts if t for w in (normalize_scene(part) for part in t.split()) if w)


def _iou_pairs(preds: list[BaseGeometry], truths: list[BaseGeometry], threshold: float) -> list[tuple[float, int, int]]:
    """(iou, prediction, truth) of every pair with IoU >= threshold; bounding boxes prefilter the pairs."""
    if not preds or not truths:
        return []
    pb = np.array([g.bounds if not g.is_empty else (np.inf, np.inf, -np.inf, -np.inf) for g in preds])
    tb = np.array([g.bounds if not g.is_empty else (np.inf, np.inf, -np.inf, -np.inf) for g in truths])
    overlap = ((pb[:, None, 0] < tb[None, :, 2]) & (tb[None, :, 0] < pb[:, None, 2])
               & (pb[:, None, 1] < tb[None, :, 3]) & (tb[None, :, 1] < pb[:, None, 3]))
    pi, ti = np.nonzero(overlap)
    if len(pi) == 0:
        return []
    a, b = np.array(preds, dtype=object)[pi], np.array(truths, dtype=object)[ti]
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    keep = ious >= threshold
    return [(float(v), int(p), int(t)) for v, p, t in zip(ious[keep], pi[keep], ti[keep])]


def score_detections(predicted: Sequence[Any], ground_truth: Sequence[Mapping[str, Any]], iou: float = 0.5,
                     level: str | None = None) -> DetectionCounts:
    """Score one image's predictions against its ground-truth regions.

    Args:
        predicted: quads ([[x, y] * 4], any polygon works), (quad, text) pairs or {"quad", "text"} mappings.
        ground_truth: regions as in labels.jsonl: {"quad", "text", "level", "ignore"}.
        iou: the IoU a matched pair needs.
        level: score only the regions of this level ("word" or "line"); None takes every region given.

    Returns:
        The image's counts, with `matches` (indexes into `predicted` and `ground_truth`).
    """
    if level is not None and level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    regions = [(i, r) for i, r in enumerate(ground_truth) if level is None or r.get("level") == level]
    care = [(i, r) for i, r in regions if not r.get("ignore", False)]
    ignored = [polygon(r["quad"]) for _, r in regions if r.get("ignore", False)]
    parsed = [_prediction(p) for p in predicted]
    pred_polys = [polygon(points) for points, _ in parsed]
    care_polys = [polygon(r["quad"]) for _, r in care]

    pairs = sorted(_iou_pairs(pred_polys, care_polys, iou), key=lambda x: (-x[0], x[1], x[2]))
    pred_match: dict[int, tuple[int, float]] = {}
    truth_taken: set[int] = set()
    for value, p, t in pairs:
        if p not in pred_match and t not in truth_taken:
            pred_match[p] = (t, value)
            truth_taken.add(t)

    ignore_union = shapely.union_all(ignored) if ignored else None
    counted = []  # predictions that count (matched, or not mostly inside ignore regions)
    for p, geom in enumerate(pred_polys):
        if p in pred_match or ignore_union is None or _inside_fraction(geom, ignore_union) < IGNORE_AREA:
            counted.append(p)

    counts = DetectionCounts(images=1, tp=len(pred_match), fp=len(counted) - len(pred_match),
                             fn=len(care) - len(pred_match))
    counts.texted_predictions = sum(parsed[p][1] is not None for p in counted)
    e2e_tp = 0
    for p, (t, value) in sorted(pred_match.items()):
        truth_text, pred_text = care[t][1].get("text"), parsed[p][1]
        correct = truth_text is not None and pred_text is not None and normalize_scene(pred_text) == normalize_scene(truth_text)
        e2e_tp += correct
        counts.matches.append(Match(p, care[t][0], value, correct))
    if all(r.get("text") is not None for _, r in care):
        counts.e2e_images = 1
        counts.e2e_tp, counts.e2e_fp, counts.e2e_fn = e2e_tp, len(counted) - e2e_tp, len(care) - e2e_tp
        predicted_bag, truth_bag = _bag(parsed[p][1] for p in counted), _bag(r.get("text") for _, r in care)
        counts.bow_tp = sum((predicted_bag & truth_bag).values())
        counts.bow_predicted, counts.bow_truth = sum(predicted_bag.values()), sum(truth_bag.values())
    return counts


def _inside_fraction(geom: BaseGeometry, region: BaseGeometry) -> float:
    if geom.is_empty:
        return 0.0
    if geom.area == 0:
        return 1.0 if region.covers(geom) else 0.0
    return geom.intersection(region).area / geom.area


def _check_region(region: Any, where: str) -> None:
    if not isinstance(region, Mapping):
        raise DatasetError(f"{where}: a region must be an object")
    quad = region.get("quad")
    try:
        pts = np.asarray(quad, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: quad must be [[x, y], ...], got {quad!r}") from e
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 4 or not np.isfinite(pts).all():
        raise DatasetError(f"{where}: quad must be [[x, y], ...] with at least 4 points, got {quad!r}")
    if region.get("level") not in LEVELS:
        raise DatasetError(f"{where}: level must be one of {', '.join(LEVELS)}, got {region.get('level')!r}")
    if not (region.get("text") is None or isinstance(region.get("text"), str)):
        raise DatasetError(f"{where}: text must be a string or null")
    if not isinstance(region.get("ignore", False), bool):
        raise DatasetError(f"{where}: ignore must be true or false")


def read_labels(folder: str | Path) -> list[dict[str, Any]]:
    """The records of a whole-image set: `folder`/labels.jsonl (or that file itself), checked.

    Raises:
        DatasetError: the file is missing, or a line is not a record of the layout.
    """
    path = Path(folder)
    path = path / LABELS_FILE if path.is_dir() else path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
        except ValueError as e:
            raise DatasetError(f"{where}: not JSON ({e})") from e
        if not isinstance(record, dict) or not isinstance(record.get("image"), str) or not isinstance(record.get("regions"), list):
            raise DatasetError(f"{where}: a record needs \"image\" (a path) and \"regions\" (a list)")
        for k, region in enumerate(record["regions"]):
            _check_region(region, f"{where} region {k}")
        records.append(record)
    return records


def default_level(records: Iterable[Mapping[str, Any]]) -> str:
    """The level a set is labelled at: the only one it uses, else "word" (sets labelled at both levels)."""
    used = {r.get("level") for record in records for r in record["regions"]}
    return "line" if used == {"line"} else "word"


def _rates(tp: int, fp: int, fn: int) -> dict[str, float]:
    p, r = precision(tp, fp), recall(tp, fn)
    return {"precision": p, "recall": r, "hmean": hmean(p, r)}


def score_dataset(folder: str | Path, predictions_by_image: Mapping[str, Sequence[Any]], iou: float = 0.5,
                  level: str | None = None) -> dict[str, Any]:
    """Score predictions for a whole-image set (`folder` with images/ and labels.jsonl), micro-averaged.

    Args:
        folder: the set, or its labels.jsonl.
        predictions_by_image: per image (keyed by the record's "image", e.g. "images/a.jpg", or its file name
            "a.jpg"), predictions as `score_detections` takes them. An image without an entry has none.
        iou: the IoU a matched pair needs.
        level: "word" or "line"; None: the level the set uses (`default_level`).

    Returns:
        {"folder", "level", "iou", "images", "tp", "fp", "fn", "precision", "recall", "hmean", "e2e": {...},
        "bow": {...}}. "e2e" holds images, skipped_images, tp, fp, fn, precision, recall, hmean; "bow" holds tp,
        predicted, truth, precision, recall, f1. Where they cannot be scored (no image has a transcription for
        every region, or no prediction has a text) their rates are None and "skipped" says why.

    Raises:
        DatasetError: labels.jsonl is missing or malformed, or predictions name images the set does not have.
        ConfigError: `level` is not a level.
    """
    records = read_labels(folder)
    level = level or default_level(records)
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    keys: dict[str, int] = {}
    for k, record in enumerate(records):
        keys.setdefault(record["image"], k)
        keys.setdefault(Path(record["image"]).name, k)
    unknown = sorted(str(key) for key in predictions_by_image if key not in keys)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DatasetError(f"{folder}: predictions for {len(unknown)} images the set does not have: {shown}")
    by_record: dict[int, Sequence[Any]] = {}
    for key, predictions in predictions_by_image.items():
        by_record[keys[key]] = list(by_record.get(keys[key], [])) + list(predictions)

    total = DetectionCounts()
    for k, record in enumerate(records):
        total = total + score_detections(by_record.get(k, []), record["regions"], iou=iou, level=level)

    skipped = None
    if total.e2e_images < total.images and total.e2e_tp + total.e2e_fn == 0:
        skipped = f"no image has a transcription for every {level} region to be found (text null)"
    elif total.texted_predictions == 0:
        skipped = "no prediction carries a text"
    e2e: dict[str, Any] = {"images": total.e2e_images, "skipped_images": total.images - total.e2e_images,
                           "tp": total.e2e_tp, "fp": total.e2e_fp, "fn": total.e2e_fn}
    bow: dict[str, Any] = {"tp": total.bow_tp, "predicted": total.bow_predicted, "truth": total.bow_truth}
    if skipped is None:
        e2e.update(_rates(total.e2e_tp, total.e2e_fp, total.e2e_fn))
        bow.update(precision=total.bow_precision, recall=total.bow_recall, f1=total.bow_f1)
    else:
        e2e.update(precision=None, recall=None, hmean=None, skipped=skipped)
        bow.update(precision=None, recall=None, f1=None, skipped=skipped)
    return {"folder": str(folder), "level": level, "iou": iou, "images": total.images,
            "tp": total.tp, "fp": total.fp, "fn": total.fn, **_rates(total.tp, total.fp, total.fn),
            "e2e": e2e, "bow": bow}
