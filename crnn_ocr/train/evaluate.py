"""Score a recognizer on labelled data: word accuracy, CER, a scoring protocol, worst errors, confusions."""

from __future__ import annotations

from pathlib import Path

from crnn_ocr.datasets.sources import Source
from crnn_ocr.errors import ConfigError, DatasetError, ImageError
from crnn_ocr.image.io import read_image
from crnn_ocr.recognize.base import TextRecognizer
from crnn_ocr.text.metrics import PROTOCOLS, TextScores

SCENE_SETS = ("iiit5k", "svt", "ic13", "ic15", "cute", "totaltext")


def auto_protocol(name: str) -> str:
    """The scoring rule `../shared/eval/README.md` gives for a set, guessed from its name."""
    n = name.lower()
    if any(n.startswith(s) for s in SCENE_SETS):
        return "scene"
    if n.startswith("sroie"):
        return "upper"
    return "exact"


def evaluate_source(recognizer: TextRecognizer, source: Source, protocol: str = "auto", limit: int = 0,
                    chunk: int = 256, progress: bool = False, name: str | None = None) -> dict:
    """Read every sample of `source` (the first `limit`, if given) and compare with its label.

    Returns a JSON-ready dict: exact accuracy and CER, the same under `protocol`, the worst errors and the
    most confused character pairs. Corrupt images count as errors and are reported.
    """
    name = name or source.name
    if protocol == "auto":
        protocol = auto_protocol(name)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; use auto, {', '.join(PROTOCOLS)}")
    norm = PROTOCOLS[protocol]
    n = min(limit, len(source)) if limit else len(source)
    exact, scored = TextScores(), TextScores(keep_errors=True)
    corrupt = 0
    from tqdm import tqdm

    bar = tqdm(total=n, disable=not progress, desc=f"eval {name}", unit="img")
    for start in range(0, n, chunk):
        arrays, labels = [], []
        for i in range(start, min(n, start + chunk)):
            label = source.label(i)
            try:
                arrays.append(read_image(source.image_bytes(i), channels=recognizer.cfg.channels))
                labels.append(label)
            except (ImageError, DatasetError):
                corrupt += 1
                exact.add(label, "")
                scored.add(norm(label), "")
        for label, pred in zip(labels, recognizer.recognize_arrays(arrays) if arrays else []):
            exact.add(label, pred.text)
            scored.add(norm(label), norm(pred.text))
        bar.update(min(n, start + chunk) - start)
    bar.close()
    return {
        "name": name,
        "samples": n,
        "corrupt": corrupt,
        "accuracy": exact.accuracy,
        "cer": exact.cer,
        "protocol": protocol,
        "protocol_accuracy": scored.accuracy,
        "protocol_cer": scored.cer,
        "worst": [{"truth": t, "pred": p, "edits": d} for t, p, d in scored.worst(10)],
        "confusions": [{"truth": t, "pred": p, "count": c} for (t, p), c in scored.confusions.most_common(10)],
    }


def dataset_name(path: str | Path) -> str:
    p = Path(path)
    return p.parent.name if p.name in ("labels.tsv", "data.mdb") else p.name
