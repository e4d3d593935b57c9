"""Inference speed: torch vs ONNX fp32 vs ONNX int8 vs Tesseract 5 on the same crops, in one run.

Per-crop latency (p50/p95, one thread, one crop per call: read array -> preprocess -> network -> decode),
batch throughput (batches of 32, one thread and all cores), accuracy on the crops, and the wall time of
`ocr recognize word.png` from a cold process. Writes benchmarks/results/inference.md and inference.json.

    python benchmarks/bench_inference.py --model runs/x/best.pt                  # 200 IIIT5K crops
    python benchmarks/bench_inference.py --model tiny.pt --limit 20 --cold-runs 2 --out /tmp/bench  # smoke run

The model is a `.pt` checkpoint; the script exports it (fp32 and int8) itself. Crops come from
../shared/eval/iiit5k_test (labels.tsv, the first --limit entries); without them the script says so and stops.
Tesseract runs through `tesserocr` with --psm 7 (one text line); install it with
`apt-get install -y tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev && pip install tesserocr`.

Latencies are reported as wall time and as the process's CPU time: on a shared machine wall time also counts
the time other processes held the core.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch/tesseract start their thread pools
os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's OpenMP

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_CROPS = REPO.parent / "shared" / "eval" / "iiit5k_test"
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata")


from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)


def machine() -> dict:
    cpu = cpu_name()
    load = load_average()
    import onnxruntime
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "load_at_start": load,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def load_crops(folder: Path, limit: int, channels: int):
    from crnn_ocr.image.io import read_image

    lines = (folder / "labels.tsv").read_text(encoding="utf-8").splitlines()[:limit]
    names, arrays, labels = [], [], []
    for line in lines:
        rel, _, label = line.partition("\t")
        names.append(folder / rel)
        arrays.append(read_image(folder / rel, channels=channels))
        labels.append(label)
    return names, arrays, labels


def summary(samples: list[float]) -> dict:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean())}


def scene_accuracy(labels: list[str], predictions: list[str]) -> float:
    from crnn_ocr.text.metrics import normalize_scene

    return sum(normalize_scene(a) == normalize_scene(b) for a, b in zip(labels, predictions)) / max(len(labels), 1)


def per_crop(read_one, arrays: list, warmup: int = 5) -> tuple[dict, dict, list[str]]:
    """Time `read_one(array) -> text` on every crop, one at a time: wall and CPU latency, and the texts."""
    for a in arrays[:warmup]:
        read_one(a)
    wall, cpu, texts = [], [], []
    for a in arrays:
        w, c = time.perf_counter(), time.process_time()
        texts.append(read_one(a))
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return summary(wall), summary(cpu), texts


def throughput(recognize_all, arrays: list) -> dict:
    recognize_all(arrays[: min(len(arrays), 32)])  # warm up
    w, c = time.perf_counter(), time.process_time()
    recognize_all(arrays)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {"crops_per_s_wall": len(arrays) / wall, "crops_per_cpu_s": len(arrays) / max(cpu, 1e-9), "cpu_s": cpu,
            "wall_s": wall}


def bench_ours(name: str, make, arrays: list, cores: int, batch_size: int) -> dict:
    """`make(threads, batch_size)` builds a recognizer; latency at 1 thread, throughput at 1 and all cores."""
    rec = make(1, 1)
    wall, cpu, texts = per_crop(lambda a: rec.recognize_arrays([a])[0].text, arrays)
    result = {"backend": name, "latency_wall": wall, "latency_cpu": cpu, "texts": texts}
    result["throughput_1_thread"] = throughput(make(1, batch_size).recognize_arrays, arrays)
    if cores > 1:
        result[f"throughput_{cores}_threads"] = throughput(make(cores, batch_size).recognize_arrays, arrays)
    return result


def find_tessdata() -> str | None:
    candidates = [os.environ.get("TESSDATA_PREFIX", "")] + list(TESSDATA_DIRS)
    for d in candidates:
        if d and (Path(d) / "eng.traineddata").is_file():
            return str(Path(d)) + "/"
    return None


def bench_tesseract(names: list[Path]) -> dict:
    try:
        import tesserocr
    except ImportError as e:
        return {"backend": "tesseract", "skipped": f"tesserocr is not installed ({e}); install it with `apt-get install -y tesseract-ocr "
                           "tesseract-ocr-eng libtesseract-dev libleptonica-dev && pip install tesserocr`"}
    from PIL import Image

    tessdata = find_tessdata()
    if tessdata is None:
        return {"backend": "tesseract", "skipped": "no eng.traineddata found (apt-get install tesseract-ocr-eng, or set TESSDATA_PREFIX)"}
    images = [Image.open(p).convert("RGB") for p in names]  # decoded up front, as our crops are
    with tesserocr.PyTessBaseAPI(path=tessdata, lang="eng", psm=tesserocr.PSM.SINGLE_LINE) as api:
        def read_one(image):
            api.SetImage(image)
            return api.GetUTF8Text().strip()

        wall, cpu, texts = per_crop(read_one, images)
    return {"backend": "tesseract", "version": tesserocr.tesseract_version().splitlines()[0], "tessdata": tessdata,
            "latency_wall": wall, "latency_cpu": cpu, "texts": texts}


def cold_start(model: Path, word: Path, runs: int, backend: str) -> dict:
    """Wall time of a fresh `ocr recognize word.png` process (interpreter start, imports, model load, read)."""
    ocr = shutil.which("ocr", path=str(Path(sys.executable).parent)) or shutil.which("ocr")
    args = ["recognize", str(word), "--model", str(model), "--backend", backend]
    command = [ocr, *args] if ocr else [sys.executable, str(REPO / "cli.py"), *args]
    times, cpu, output = [], [], ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if run.returncode != 0:
            return {"error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"}
        output = run.stdout.strip()
    imports = subprocess.run([sys.executable, "-X", "importtime", "-c", "from crnn_ocr.cli import main; main()", *args],
                             capture_output=True, text=True)
    torch_loaded = any(line.split("|")[-1].strip() == "torch" for line in imports.stderr.splitlines())
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
            "median_s": statistics.median(times), "min_s": min(times), "median_cpu_s": statistics.median(cpu),
            "runs": runs, "output": output,
            "imports_torch": torch_loaded}


def write_markdown(path: Path, r: dict) -> None:
    m = r["machine"]
    lines = [
        "# Inference benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); Python {m['python']}, torch "
        f"{m['torch']}, onnxruntime {m['onnxruntime']}; load average at start {m['load_at_start']}; {m['date']}.",
        f"Run: `{r['command']}`.",
        f"Model: `{r['model']}` ({r['arch']}), {r['crops']} crops from `{r['crops_dir']}` (scene protocol accuracy).",
        "",
        "## Export",
        "",
        "| file | size | max abs logit difference |",
        "| --- | ---: | ---: |",
        f"| fp32 `.onnx` | {r['export']['size_bytes'] / 1e6:.2f} MB | {r['export']['parity']['max_abs_diff']:.1e} vs torch "
        f"({len(r['export']['parity']['cases'])} batch x width cases) |",
        f"| int8 `.onnx` | {r['export']['int8']['size_bytes'] / 1e6:.2f} MB | "
        f"{r['export']['int8']['max_abs_diff_vs_fp32']:.1e} vs fp32 |",
        "",
        "## Per-crop latency (one thread, one crop per call: preprocess + network + greedy decode)",
        "",
        "| backend | p50 ms (wall) | p95 ms (wall) | p50 ms (CPU) | p95 ms (CPU) | accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in r["backends"]:
        if "skipped" in b:
            continue
        lw, lc = b["latency_wall"], b["latency_cpu"]
        lines.append(f"| {b['backend']} | {lw['p50_ms']:.2f} | {lw['p95_ms']:.2f} | {lc['p50_ms']:.2f} | "
                     f"{lc['p95_ms']:.2f} | {b['accuracy']:.3f} |")
    skipped = [b for b in r["backends"] if "skipped" in b]
    for b in skipped:
        lines.append(f"\nTesseract: **not measured**: {b['skipped']}")
    lines += ["", f"## Batch throughput (batches of {r['batch_size']}): crops per wall second (per CPU second)", ""]
    keys = [k for k in r["backends"][0] if k.startswith("throughput_")]
    lines.append("| backend | " + " | ".join(k.replace("throughput_", "").replace("_", " ") for k in keys) + " |")
    lines.append("| --- |" + " ---: |" * len(keys))
    for b in r["backends"]:
        if b["backend"] in ("torch", "onnx fp32", "onnx int8"):
            cells = [f"{b[k]['crops_per_s_wall']:.1f} ({b[k]['crops_per_cpu_s']:.1f})" for k in keys]
            lines.append(f"| {b['backend']} | " + " | ".join(cells) + " |")
    lines += ["", "## Cold start: `ocr recognize word.png` in a fresh process", "",
              "| backend | median s (wall) | min s (wall) | median s (CPU, user + sys) | imports torch |",
              "| --- | ---: | ---: | ---: | --- |"]
    for name, c in r["cold_start"].items():
        if "error" in c:
            lines.append(f"| {name} | failed: {c['error']} | | | |")
        else:
            lines.append(f"| {name} | {c['median_s']:.3f} | {c['min_s']:.3f} | {c['median_cpu_s']:.3f} | "
                         f"{'yes' if c['imports_torch'] else 'no'} |")
    lines += ["", f"Goal for the ONNX path: under 0.5 s on this machine. Runs per backend: "
              f"{next(iter(r['cold_start'].values())).get('runs', 0)}.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint (.pt); exported to fp32 and int8 ONNX here")
    parser.add_argument("--crops", default=str(DEFAULT_CROPS), help="folder with labels.tsv (default: IIIT5K test)")
    parser.add_argument("--limit", type=int, default=200, help="first N crops")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    crops_dir = Path(args.crops)
    if not (crops_dir / "labels.tsv").is_file():
        print(f"SKIPPED: no labelled crops at {crops_dir} (expected {crops_dir / 'labels.tsv'}); "
              "pass --crops FOLDER. Nothing was measured or written.", file=sys.stderr)
        return 0

    import torch

    from crnn_ocr.export import export_onnx
    from crnn_ocr.recognize.torch_backend import TorchRecognizer
    from crnn_ocr.runtime import OnnxRecognizer

    torch.set_num_threads(1)
    info = machine()
    cores = info["usable_cores"] or 1
    work = Path(tempfile.mkdtemp(prefix="bench_inference."))
    try:
        print(f"exporting {args.model} ...", file=sys.stderr)
        report = export_onnx(args.model, work / "model.onnx", int8=True)
        fp32, int8 = work / "model.onnx", work / "model.int8.onnx"
        cfg = OnnxRecognizer(fp32).cfg
        names, arrays, labels = load_crops(crops_dir, args.limit, cfg.channels)
        print(f"{len(arrays)} crops from {crops_dir}", file=sys.stderr)

        def torch_rec(threads: int, batch: int):
            torch.set_num_threads(threads)
            return TorchRecognizer.from_checkpoint(args.model, batch_size=batch)

        backends = []
        for name, make in [
            ("torch", torch_rec),
            ("onnx fp32", lambda t, b: OnnxRecognizer(fp32, threads=t, batch_size=b)),
            ("onnx int8", lambda t, b: OnnxRecognizer(int8, threads=t, batch_size=b)),
        ]:
            print(f"{name} ...", file=sys.stderr)
            backends.append(bench_ours(name, make, arrays, cores, args.batch_size))
            torch.set_num_threads(1)
        print("tesseract ...", file=sys.stderr)
        backends.append(bench_tesseract(names))
        for b in backends:
            if "texts" in b:
                b["accuracy"] = scene_accuracy(labels, b["texts"])

        word = work / ("word" + names[0].suffix)
        shutil.copy(names[0], word)
        print("cold starts ...", file=sys.stderr)
        cold = {"onnx fp32": cold_start(fp32, word, args.cold_runs, "onnx"),
                "torch (.pt)": cold_start(Path(args.model), word, args.cold_runs, "torch")}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "machine": info,
        "command": "python benchmarks/bench_inference.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model), "arch": report["arch"], "crops": len(arrays), "crops_dir": str(crops_dir),
        "batch_size": args.batch_size, "export": report, "backends": backends, "cold_start": cold,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for b in results["backends"]:
        b.pop("texts", None)
    (out / "inference.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    write_markdown(out / "inference.md", results)
    print((out / "inference.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
