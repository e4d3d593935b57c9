"""Scoring the whole pipeline on folders of whole images with boxes (`images/` + `labels.jsonl`): detection
precision / recall / hmean at IoU 0.5, end-to-end hmean, bag-of-words F1 and CPU seconds per image.

`ocr eval --data FOLDER` runs this for such folders; `benchmarks/bench_scenes.py` runs it beside other engines
with the same scoring code (`crnn_ocr.detect.scoring`).

>>> # evaluate_scenes(crnn_ocr.load(), "../shared/eval/scenes/msra_td500_test")["hmean"]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crnn_ocr.detect.scoring import LABELS_FILE, default_level, read_labels, score_dataset


def is_scene_folder(path: str | Path) -> bool:
    return (Path(path) / LABELS_FILE).is_file()


def predictions_of(document, level: str) -> list[dict[str, Any]]:
    """A read Document's boxes at one level ("line" or "word") as scoring predictions (quad and text)."""
    out = []
    for line in document.lines:
        if level == "line":
            out.append({"quad": [list(p) for p in line.quad], "text": line.text})
        else:
            out.extend({"quad": [list(p) for p in w.quad], "text": w.text} for w in line.words)
    return out


def evaluate_scenes(reader, folder: str | Path, level: str | None = None, limit: int = 0,
                    progress: bool = False) -> dict[str, Any]:
    """Read every image of `folder` with `reader` (a `crnn_ocr.Reader`) and score it (see module docstring)."""
    folder = Path(folder)
    records = read_labels(folder)
    if limit:
        records = records[:limit]
    level = level or default_level(records)
    predictions: dict[str, list] = {}
    cpu = 0.0
    from tqdm import tqdm

    for record in tqdm(records, disable=not progress, desc=folder.name, unit="image"):
        start = time.process_time()
        document = reader.read(folder / record["image"])
        cpu += time.process_time() - start
        predictions[record["image"]] = predictions_of(document, level)
    if limit:  # score the images read, as if the set held only them
        import json
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / LABELS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            scores = score_dataset(tmp, predictions, level=level)
    else:
        scores = score_dataset(folder, predictions, level=level)
    scores.update(folder=str(folder), name=folder.name, cpu_s_per_image=cpu / max(1, len(records)))
    return scores
