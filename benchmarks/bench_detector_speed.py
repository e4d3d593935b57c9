"""Speed of the DB text detectors on this machine, and two design measurements. Writes
benchmarks/results/detector_speed.md (and .json beside it).

1. Training throughput of every registered arch: images/s of forward + DB loss + backward + AdamW step, batch 8 of
   real augmented crops (the shared train scenes when present, else rendered blobs), at train sizes 512 and 640,
   loss at full resolution (loss_stride 1); db_small also with loss_stride 4. Data loading is timed apart.
2. Inference: each arch exported to ONNX (fp32 and static int8), onnxruntime on a 1280 x 736 input (and 960 x 544),
   ms per image for the network and for the post-processing.
3. Oracle decoding: the training targets' own kernels (what a perfect net would output) decoded by the
   post-processing and scored against the truth (IoU 0.5) on the shared train sets, at loss/map stride 1, 2 and 4,
   unclip ratio 1.5 / 2.0: what the loss resolution and the unclip ratio cost before any learning.

    python benchmarks/bench_detector_speed.py --threads 1            # all of it, about 8 minutes on one core
    python benchmarks/bench_detector_speed.py --skip-train --skip-oracle
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)

from crnn_ocr.detect.config import DetectorConfig, DetectTrainConfig, SceneSource
from crnn_ocr.detect.data import DetectionDataset, open_scene_folder
from crnn_ocr.detect.evaluate import match_detections, rates
from crnn_ocr.detect.export import export_detector_model, quantize_detector
from crnn_ocr.detect.labels import read_rgb, read_scene_labels
from crnn_ocr.detect.nets import available, count_parameters, create_detector
from crnn_ocr.detect.postprocess import boxes_from_map
from crnn_ocr.detect.runtime import OnnxDetector, input_size
from crnn_ocr.detect.targets import TextRegion, make_targets
from crnn_ocr.detect.train import db_loss

REPO = Path(__file__).resolve().parents[1]
SCENES = REPO.parent / "shared" / "train" / "scenes"
SETS = {"msra_td500_train": True, "funsd_train": True, "sroie_receipts_train": True, "svt_scenes_train": False}


def sources() -> list[SceneSource]:
    found = [SceneSource(str(SCENES / name), complete=complete) for name, complete in SETS.items() if (SCENES / name).is_dir()]
    if found:
        return found
    sys.path.insert(0, str(REPO / "tests"))  # no shared data: the test suite's rendered fixture
    from test_detect import render_folder

    root = Path(tempfile.mkdtemp()) / "render"
    return [SceneSource(str(render_folder(root, 16, seed=0, size=(480, 640))))]


def train_speed(arch: str, size: int, stride: int, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    cfg = DetectTrainConfig(data=sources(), model=DetectorConfig(arch=arch, train_size=size), batch_size=batch,
                            loss_stride=stride)
    ds = DetectionDataset([open_scene_folder(s) for s in cfg.data], cfg)
    started = time.perf_counter()
    samples = [ds[n] for n in range(batch)]
    load_s = (time.perf_counter() - started) / batch
    batch_t = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    model = create_detector(cfg.model).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = batch_t["image"].contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        t = time.perf_counter()
        loss, _ = db_loss(model(images), batch_t, cfg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    return {"arch": arch, "size": size, "loss_stride": stride, "batch": batch, "step_s": step_s,
            "images_per_s": batch / step_s, "data_ms_per_image": 1000 * load_s,
            "images_per_s_with_data_inline": batch / (step_s + batch * load_s)}


def inference_speed(arch: str, shapes: list[tuple[int, int]], runs: int, tmp: Path) -> list[dict]:
    torch.manual_seed(0)
    cfg = DetectorConfig(arch=arch)
    model = create_detector(cfg)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of real-looking scale, so int8 calibration is not degenerate
        for _ in range(2):
            model(torch.randn(2, 3, 256, 256))
    path = tmp / f"{arch}.onnx"
    export_detector_model(model, cfg, path, check=False)
    quantize_detector(path, tmp / f"{arch}.int8.onnx", "static", SCENES / "funsd_train" if SCENES.is_dir() else None,
                      samples=8)
    rng = np.random.default_rng(0)
    out = []
    for kind, file in (("fp32", path), ("int8", tmp / f"{arch}.int8.onnx")):
        det = OnnxDetector(file, threads=torch.get_num_threads())
        for h, w in shapes:
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            det.max_side = max(h, w)
            batch = np.zeros((1, 3, h, w), np.float32)
            det._forward(batch)
            net = []
            for _ in range(runs):
                t = time.perf_counter()
                maps = det._forward(batch)
                net.append(time.perf_counter() - t)
            t = time.perf_counter()
            det.detect(image)  # resize + net + post-processing of noise maps (few boxes)
            total = time.perf_counter() - t
            out.append({"arch": arch, "kind": kind, "input": f"{w}x{h}", "net_ms": 1000 * statistics.median(net),
                        "detect_ms": 1000 * total, "size_bytes": file.stat().st_size, "maps": list(maps.shape)})
    return out


def oracle(limit: int, max_side: int) -> list[dict]:
    """Decode the targets' kernels with the post-processing and score them against the truth."""
    rows = []
    for name, complete in SETS.items():
        if not (SCENES / name).is_dir():
            continue
        images = read_scene_labels(SCENES / name)[:limit]
        for stride in (1, 2, 4):
            for unclip in (1.5, 2.0):
                counts = {"tp": 0, "fp": 0, "fn": 0}
                for scene in images:
                    h, w = read_rgb(scene.path).shape[:2]
                    ih, iw = input_size(h, w, max_side)
                    sx, sy = iw / w, ih / h
                    for level in sorted({r.level for r in scene.regions}):
                        regions = [TextRegion(r.quad * [sx, sy], r.ignore) for r in scene.regions if r.level == level]
                        kernel = make_targets((ih, iw), regions, stride=stride)["shrink"]
                        found = boxes_from_map(kernel, unclip_ratio=unclip, box_threshold=0.5, map_stride=stride,
                                               scale=(1 / sx, 1 / sy), image_size=(h, w))
                        c = match_detections([d.quad for d in found], scene.as_records(), 0.5, level)
                        for k in counts:
                            counts[k] += c[k]
                r = rates(**counts)
                rows.append({"set": name, "stride": stride, "unclip": unclip, "images": len(images), **counts,
                             "recall": r["recall"], "hmean": r["hmean"] if complete else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--archs", nargs="*", default=available())
    parser.add_argument("--sizes", nargs="*", type=int, default=[512, 640])
    parser.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up")
    parser.add_argument("--runs", type=int, default=5, help="timed inference runs after one warm-up")
    parser.add_argument("--oracle-images", type=int, default=40, help="images per set for the oracle decoding")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    parser.add_argument("--skip-oracle", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "detector_speed.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    out = Path(args.out)
    # sections skipped this time keep their previous numbers (from the .json beside the report)
    results: dict = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    results.update({"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__, "load_before": load_before,
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "parameters": {a: count_parameters(create_detector(DetectorConfig(arch=a))) for a in args.archs}})
    def meta() -> dict:
        return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load_before": load_average()}

    if not args.skip_train:
        results["train_meta"] = meta()
        results["train"] = []
        for arch in args.archs:
            for size in args.sizes:
                results["train"].append(train_speed(arch, size, 1, 8, args.steps))
                print(results["train"][-1], flush=True)
        if "db_small" in args.archs:
            results["train"].append(train_speed("db_small", max(args.sizes), 4, 8, args.steps))
            print(results["train"][-1], flush=True)
    if not args.skip_infer:
        results["inference_meta"] = meta()
        results["inference"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for arch in args.archs:
                results["inference"] += inference_speed(arch, [(736, 1280), (544, 960)], args.runs, Path(tmp))
                print(results["inference"][-4:], flush=True)
    if not args.skip_oracle:
        results["oracle_meta"] = meta()
        results["oracle"] = oracle(args.oracle_images, 1280)
        for row in results["oracle"]:
            print(row, flush=True)
    results["load_after"] = load_average()
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out)
    print(f"wrote {out}")


NOTES = "<!-- notes below this line are written by hand and kept when the script rewrites the file -->"


def write_markdown(r: dict, out: Path) -> None:
    def when(section: str) -> str:
        m = r.get(section + "_meta", {})
        return f"Measured {m.get('date', '?')}, load average before: {m.get('load_before', '?')}."

    lines = ["# DB text detector: CPU speed", "",
             f"`python benchmarks/bench_detector_speed.py --threads {r['threads']}` on {r['cpu']} (2 cores, shared with "
             f"other work; torch {r['torch']}, {r['threads']} thread(s)). Medians of a few timed runs after a warm-up; "
             "on this shared machine expect +-30% from run to run (compare rows of one section, not absolute values).", "",
             "Parameters: " + ", ".join(f"{a} {n:,} ({4 * n / 1e6:.2f} MB fp32)" for a, n in r["parameters"].items()), ""]
    if "train" in r:
        lines += ["## Training (forward + DB loss + backward + AdamW), batch 8", "", when("train"), "",
                  "| arch | train size | loss stride | s/step | images/s | data ms/image (1 process) | images/s with data inline |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {t['arch']} | {t['size']} | {t['loss_stride']} | {t['step_s']:.2f} | {t['images_per_s']:.2f} | "
                  f"{t['data_ms_per_image']:.0f} | {t['images_per_s_with_data_inline']:.2f} |" for t in r["train"]]
        lines.append("")
    if "inference" in r:
        lines += ["## Inference (onnxruntime, one image)", "", when("inference"), "",
                  "| arch | model | input (W x H) | net ms | detect ms (resize + net + post-processing) | file size |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {i['arch']} | {i['kind']} | {i['input']} | {i['net_ms']:.0f} | {i['detect_ms']:.0f} | "
                  f"{i['size_bytes'] / 1e6:.2f} MB |" for i in r["inference"]]
        lines.append("")
    if "oracle" in r:
        lines += ["## Oracle decoding: the targets' own kernels through the post-processing (IoU 0.5)", "", when("oracle"),
                  "Images at the inference size (long side at most 1280); hmean is not given for SVT (incomplete labels).", "",
                  "| set | map stride | unclip ratio | images | tp | fp | fn | recall | hmean |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {o['set']} | {o['stride']} | {o['unclip']} | {o['images']} | {o['tp']} | {o['fp']} | {o['fn']} | "
                  f"{o['recall']:.3f} | {'-' if o['hmean'] is None else format(o['hmean'], '.3f')} |" for o in r["oracle"]]
        lines.append("")
    kept = out.read_text().split(NOTES, 1)[1] if out.is_file() and NOTES in out.read_text() else "\n"
    out.write_text("\n".join(lines) + "\n" + NOTES + kept)


if __name__ == "__main__":
    main()
