"""`ocr detector train | eval | export` driven as a user would: a tiny run on rendered images, resumed, exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_detect import render_folder

from crnn_ocr.cli import main


def write_config(path: Path, scenes: Path, out: Path, steps: int) -> Path:
    path.write_text(f'''
out = "{out}"
steps = {steps}
batch_size = 2
lr = 3e-3
warmup_steps = 0
val_every = 2
checkpoint_every = 2
log_every = 1
threads = 1
seed = 3
[model]
arch = "db_tiny"
train_size = 128
max_side = 256
[[data]]
path = "{scenes}"
holdout = 2
''')
    return path


@pytest.mark.slow
def test_train_resume_eval_export(tmp_path):
    scenes = render_folder(tmp_path / "scenes", 10, seed=5)
    out = tmp_path / "run"
    runner = CliRunner()
    config = write_config(tmp_path / "det.toml", scenes, out, steps=4)
    first = runner.invoke(main, ["detector", "train", "-c", str(config), "--steps", "2"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["detector", "train", "-c", str(config)])  # a run is not overwritten by accident
    assert again.exit_code == 1 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1
    resumed = runner.invoke(main, ["detector", "train", "-c", str(config), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["step"] == 4
    exported = runner.invoke(main, ["detector", "export", "-m", str(out / "last.pt"), "-o", str(tmp_path / "d.onnx")])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["parity"]["max_abs_diff"] < 1e-3
    scored = runner.invoke(main, ["detector", "eval", "-m", str(tmp_path / "d.onnx"), "-d", str(scenes), "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)[0]
    assert result["images"] == 10 and set(result["levels"]) == {"word", "line"}
    from crnn_ocr.detect.runtime import OnnxDetector

    assert OnnxDetector(tmp_path / "d.onnx").cfg.arch == "db_tiny"
    # the run's weights averaged with a fresh detector of the same architecture: the mean of the two; a detector of
    # another architecture is refused in one line
    import torch

    from crnn_ocr.detect.config import DetectorConfig
    from crnn_ocr.detect.nets import create_detector, load_detector_checkpoint, save_detector

    other = tmp_path / "other.pt"
    save_detector(other, create_detector(DetectorConfig(arch="db_tiny", train_size=128)), DetectorConfig(
        arch="db_tiny", train_size=128))
    mean = tmp_path / "mean.pt"
    averaged = runner.invoke(main, ["detector", "average", "-m", str(out / "last.pt"), "-m", str(other), "-o", str(mean)])
    assert averaged.exit_code == 0, averaged.output
    a, b, m = (load_detector_checkpoint(p)["state_dict"] for p in (out / "last.pt", other, mean))
    name = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.allclose(m[name], (a[name] + b[name]) / 2, atol=1e-6)
    small = tmp_path / "small.pt"
    save_detector(small, create_detector(DetectorConfig(arch="db_small")), DetectorConfig(arch="db_small"))
    refused = runner.invoke(main, ["detector", "average", "-m", str(out / "last.pt"), "-m", str(small), "-o", str(mean)])
    assert refused.exit_code == 1 and "cannot average" in refused.stderr and len(refused.stderr.splitlines()) == 1


@pytest.mark.slow
def test_detector_training_restarts_under_jemalloc_when_installed(tmp_path):
    import os
    import subprocess
    import sys

    from crnn_ocr.train.allocator import find_jemalloc

    scenes = render_folder(tmp_path / "scenes", 6, seed=6)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "CRNN_OCR_JEMALLOC_TRIED")}
    repo = Path(__file__).resolve().parents[1]

    def allocator_used(name: str, *flags: str) -> str:
        config = write_config(tmp_path / f"{name}.toml", scenes, tmp_path / name, steps=1)
        run = subprocess.run([sys.executable, str(repo / "cli.py"), "detector", "train", "-c", str(config), *flags],
                             capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout.strip().splitlines()[-1])["allocator"]

    assert allocator_used("auto") == ("jemalloc" if find_jemalloc() else "glibc")
    assert allocator_used("glibc", "--allocator", "glibc") == "glibc"
