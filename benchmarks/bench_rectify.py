"""CPU cost of the TPS rectifier (`model.rectify = "tps"`): onnxruntime, one thread, one crop per call.

The shipped model's architecture and weights (crnn_s) without and with a rectifier (the rectifier as fine-tuning
from the shipped weights starts: the identity, with random localisation convolutions, which cost what trained
ones do), both exported to ONNX with `crnn_ocr.export.export_model`. Crops 32 x 100 and 32 x 256. CPU time of
the process (`time.process_time`) over blocks of `--reps` calls, in `--rounds` rounds that alternate the models
(so drifting load on a shared machine hits both alike); the median round is reported. The rule the issue sets:
the TPS model within 1.5x the plain model's CPU time per crop. Writes benchmarks/results/rectify.md.

    python benchmarks/bench_rectify.py                     # about 2 minutes on one core
    python benchmarks/bench_rectify.py --reps 200 --rounds 3 --out /tmp/rectify.md   # smoke run
    python benchmarks/bench_rectify.py --loc 4,8,16 --loc 16,32,64   # also other localisation widths
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)

WIDTHS = (100, 256)
LIMIT = 1.5


def build_models(loc_variants: list[tuple[int, ...]]) -> tuple[object, object, list[tuple[str, object]]]:
    """(cfg, vocab, [(name, model)]): the shipped model, then one TPS model per localisation width."""
    import torch

    from crnn_ocr.config import ModelConfig
    from crnn_ocr.defaults import default_model
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import load_checkpoint, load_model
    from crnn_ocr.models.rectify import TPSRectifier
    from crnn_ocr.train.loop import transfer_weights

    shipped = default_model("torch")
    if shipped is None:
        sys.exit("no shipped model (weights/crnn_default.pt)")
    plain, cfg, vocab = load_model(shipped)
    models = [(f"{cfg.arch}", plain)]
    for loc in loc_variants:
        torch.manual_seed(0)
        tps_cfg = ModelConfig.from_dict({**cfg.to_dict(), "rectify": "tps"})
        model = create_model(tps_cfg, vocab.num_classes)
        model.rectifier = TPSRectifier(cfg.channels, loc_channels=loc)
        transfer_weights(model, load_checkpoint(shipped), vocab, str(shipped))
        rect_params = sum(p.numel() for p in model.rectifier.parameters())
        models.append((f"{cfg.arch} + tps (loc {'-'.join(map(str, loc))}, {rect_params:,} params)", model.eval()))
    return cfg, vocab, models


def time_sessions(sessions: list, width: int, reps: int, rounds: int) -> list[float]:
    """Median over rounds of CPU ms per call, per session, on one random 1 x 1 x 32 x `width` crop."""
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 32, width)).astype(np.float32)
    for s in sessions:
        for _ in range(20):
            s.run(["logits"], {"images": x})
    per_round: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            start = time.process_time()
            for _ in range(reps):
                s.run(["logits"], {"images": x})
            per_round[i].append((time.process_time() - start) / reps * 1000)
    return [statistics.median(r) for r in per_round]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=500, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=7, help="timed blocks per model and width")
    parser.add_argument("--loc", action="append", default=[],
                        help="other localisation widths to time, e.g. 4,8,16 (the default 8,16,32 always runs)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rectify.md"))
    args = parser.parse_args()

    import onnxruntime
    import torch

    from crnn_ocr.export import export_model
    from crnn_ocr.models.rectify import LOC_CHANNELS
    from crnn_ocr.runtime import open_session

    torch.set_num_threads(1)
    variants = [LOC_CHANNELS] + [tuple(int(c) for c in v.split(",")) for v in args.loc]
    load_before = load_average()
    cfg, vocab, models = build_models(variants)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sessions = []
        for i, (_, model) in enumerate(models):
            path = export_model(model, model.cfg, vocab, Path(tmp) / f"m{i}.onnx")
            sessions.append(open_session(path, threads=1))
        for width in WIDTHS:
            ms = time_sessions(sessions, width, args.reps, args.rounds)
            for (name, _), t in zip(models, ms):
                rows.append((name, width, t, t / ms[0]))
                print(f"{name:50s} 32x{width}: {t:.3f} ms CPU/crop, {t / ms[0]:.2f}x", flush=True)

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        "# TPS rectifier: CPU cost per crop",
        "",
        f"Machine: {platform.platform()}; {cpu_name()}, {os.cpu_count()} cores ({usable} usable), "
        f"1 thread (onnxruntime intra-op threads 1, OMP_NUM_THREADS=1); Python {platform.python_version()}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; load average before {load_before}, "
        f"after {load_average()}; {time.strftime('%Y-%m-%d %H:%M')}.",
        f"Run: `python benchmarks/bench_rectify.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`.",
        f"Model: `weights/crnn_default.pt` ({cfg.arch}, fp32 ONNX), batch 1, one random crop per width; CPU time "
        f"(`time.process_time`) of blocks of {args.reps} calls, median of {args.rounds} rounds alternating the models.",
        "",
        "| model | crop (H x W) | CPU ms per crop | vs without TPS |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [f"| {name} | 32 x {w} | {t:.3f} | {ratio:.2f}x |" for name, w, t, ratio in rows]
    worst = max(ratio for name, _, _, ratio in rows if name == models[1][0])
    verdict = "within" if worst <= LIMIT else "above"
    lines += ["", f"The default rectifier (`rectify = \"tps\"`, first TPS row) costs at most {worst:.2f}x the plain "
              f"model's CPU time per crop: {verdict} the {LIMIT}x limit. A load average above the core count means "
              "other processes shared the cores: absolute times are then inflated; compare the ratios, measured in "
              "alternating rounds.", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
