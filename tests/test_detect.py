"""The DB text detector: registry contract, targets on hand-made quads, dataset, training and exact resume, export
and ONNX parity, the torch-free runtime, checkpoints. Fixtures are rendered here (no ../shared needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from crnn_ocr.detect.config import DetectorConfig, DetectTrainConfig, SceneSource, expand_sources
from crnn_ocr.detect.data import DetectionDataset, _visible_fraction, open_scene_folder
from crnn_ocr.detect.evaluate import evaluate_detector, match_detections
from crnn_ocr.detect.labels import read_scene_labels, split_holdout
from crnn_ocr.detect.nets import (
    FORMAT,
    available,
    count_parameters,
    create_detector,
    load_detector,
    load_detector_checkpoint,
    register,
)
from crnn_ocr.detect.postprocess import boxes_from_map, order_quad
from crnn_ocr.detect.runtime import TextDetector, input_size
from crnn_ocr.detect.targets import TextRegion, make_targets, shrink_offset
from crnn_ocr.errors import ArchitectureError, CheckpointError, ConfigError, DatasetError

REPO = Path(__file__).resolve().parents[1]
ONNX_BUDGET = 5_000_000  # bytes of fp32 weights an exported detector may hold


def quad(x0, y0, x1, y1) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def render_folder(root: Path, count: int, seed: int, levels=("word", "line"), size=(192, 256)) -> Path:
    """Images of black words on noisy random backgrounds with word and line boxes; every fourth has no text."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    words = ["text", "DB", "crnn", "ocr", "2024", "Hello"]
    with open(root / "labels.jsonl", "w") as f:
        for i in range(count):
            h, w = size
            img = np.clip(rng.integers(120, 255, 3) + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
            regions = []
            if i % 4 != 3:
                for row in range(2):
                    y = 50 + row * 70 + int(rng.integers(-8, 8))
                    x = int(rng.integers(8, 40))
                    line = []
                    for _ in range(2):
                        word = str(rng.choice(words))
                        (tw, th), base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
                        cv2.putText(img, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
                        box = quad(x - 1, y - th - 1, x + tw + 1, y + base)
                        line.append(box)
                        if "word" in levels:
                            regions.append({"quad": box, "text": word, "level": "word", "ignore": False})
                        x += tw + 18
                    if "line" in levels:
                        regions.append({"quad": quad(line[0][0][0], min(b[0][1] for b in line), line[-1][1][0],
                                                     max(b[2][1] for b in line)), "text": None, "level": "line", "ignore": False})
            name = f"images/{i:03d}.png"
            cv2.imwrite(str(root / name), img)
            f.write(json.dumps({"image": name, "width": w, "height": h, "regions": regions}) + "\n")
    return root


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return render_folder(tmp_path_factory.mktemp("scenes") / "synth", 8, seed=1)


@pytest.fixture(scope="module")
def word_scenes(tmp_path_factory) -> Path:
    return render_folder(tmp_path_factory.mktemp("words") / "words", 4, seed=2, levels=("word",))


def tiny_config(scenes: Path, out: Path, **kw) -> DetectTrainConfig:
    base = dict(data=[SceneSource(str(scenes), holdout=2)], out=str(out),
                model=DetectorConfig(arch="db_tiny", train_size=128, max_side=256), steps=6, batch_size=2, lr=3e-3,
                warmup_steps=0, val_every=1000, checkpoint_every=2, log_every=1, threads=1, seed=3)
    base.update(kw)
    return DetectTrainConfig(**base)


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory) -> Path:
    """A few steps of db_tiny (with validation on the held-out images, so best.pt exists)."""
    from crnn_ocr.detect.train import train_detector

    out = tmp_path_factory.mktemp("run")
    train_detector(tiny_config(scenes, out, steps=4, val_every=4), log=lambda *_: None)
    return out


# ----- registry contract -----
@pytest.mark.parametrize("arch", available())
def test_every_arch_keeps_the_contract(arch):
    torch.manual_seed(0)
    cfg = DetectorConfig(arch=arch)
    net = create_detector(cfg)
    x = torch.randn(2, 3, 64, 96)
    out = net(x)
    assert out.shape == (2, 2 * cfg.num_levels, 16, 24)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert count_parameters(net) * 4 < ONNX_BUDGET
    net.eval()
    with torch.no_grad():
        assert net.prob_logits(x).shape == (2, cfg.num_levels, 16, 24)


def test_registry_refuses_unknown_and_duplicate_names():
    with pytest.raises(ArchitectureError, match="unknown detector architecture"):
        create_detector(DetectorConfig(arch="db_nope"))
    with pytest.raises(ArchitectureError, match="already registered"):
        register("db_tiny")(lambda cfg: None)
    assert {"db_tiny", "db_small"} <= set(available())


def test_input_sides_must_be_multiples_of_32():
    with pytest.raises(ConfigError, match="multiples of 32"):
        create_detector(DetectorConfig(arch="db_tiny"))(torch.zeros(1, 3, 48, 64))


def test_detector_config_validates_and_round_trips():
    cfg = DetectorConfig(arch="db_tiny", levels=["line"], mean=0.5, std=[0.25])
    assert cfg.levels == ("line",) and cfg.mean == (0.5,)
    assert DetectorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad in ({"levels": ["word", "word"]}, {"levels": ["char"]}, {"train_size": 100}, {"binarize_threshold": 1.5},
                {"colour": 1}):
        with pytest.raises(ConfigError):
            DetectorConfig.from_dict(bad)


# ----- targets -----
def test_targets_of_a_rectangle_have_the_db_geometry():
    w, h = 80.0, 20.0
    distance = shrink_offset(np.array(quad(0, 0, w, h)), 0.4)
    assert distance == pytest.approx(w * h * (1 - 0.16) / (2 * (w + h)))  # D = A (1 - r^2) / L
    t = make_targets((60, 140), [TextRegion(np.array(quad(30, 20, 30 + w, 20 + h)))])
    kernel = (w - 2 * distance) * (h - 2 * distance)
    assert t["shrink"].sum() == pytest.approx(kernel, rel=0.25)  # pixel centres on the border count
    ys, xs = np.nonzero(t["shrink"])
    assert xs.min() >= 30 + distance - 1 and xs.max() <= 30 + w - distance + 1
    assert ys.min() >= 20 + distance - 1 and ys.max() <= 20 + h - distance + 1
    assert t["shrink_mask"].min() == 1  # nothing ignored
    grown = (w + 2 * distance) * (h + 2 * distance) - (4 - np.pi) * distance ** 2  # round corners
    assert t["thresh_mask"].sum() == pytest.approx(grown, rel=0.1)
    assert t["thresh"][20, 70] == pytest.approx(0.7)  # on the top edge: the border value
    assert t["thresh"][30, 70] == pytest.approx(0.3, abs=0.02)  # centre: farther than D from every edge
    assert t["thresh"][0, 0] == pytest.approx(0.3) and t["thresh_mask"][0, 0] == 0
    assert t["thresh"].max() <= 0.7 + 1e-6


def test_ignore_tiny_and_incomplete_regions_shape_the_masks():
    keep, skip = np.array(quad(10, 10, 60, 30)), np.array(quad(80, 10, 120, 30))
    t = make_targets((50, 140), [TextRegion(keep), TextRegion(skip, ignore=True), TextRegion(np.array(quad(5, 40, 30, 42)))])
    assert t["shrink_mask"][20, 100] == 0 and t["shrink"][20, 100] == 0  # ignore: masked, no kernel, no border
    assert t["thresh_mask"][20, 100] == 0
    assert t["shrink_mask"][41, 15] == 0  # 2 px high: below min_text_size, don't care
    assert t["shrink_mask"][45, 70] == 1 and t["shrink"][20, 35] == 1
    part = make_targets((50, 140), [TextRegion(keep)], complete=False)
    assert part["shrink_mask"][45, 130] == 0  # far from labelled text: unknown
    assert part["shrink_mask"][20, 35] == 1 and part["shrink_mask"][10, 35] == 1  # the box and its border band


def test_targets_at_stride_4_cover_the_same_place():
    t = make_targets((64, 128), [TextRegion(np.array(quad(16, 16, 112, 48)))], stride=4)
    assert t["shrink"].shape == (16, 32)
    ys, xs = np.nonzero(t["shrink"])
    assert 4 <= xs.min() and xs.max() <= 28 and 4 <= ys.min() and ys.max() <= 12


def test_kernel_targets_decode_inside_the_box():
    """The post-processing grows a target kernel back around the same centre, inside the box: DB's unclip 1.5
    undoes only part of r = 0.4's shrinking (most for long lines; a trained net's kernels are wider)."""
    box = np.array(quad(40, 30, 200, 70), np.float32)
    for stride in (1, 4):
        prob = make_targets((128, 256), [TextRegion(box)], stride=stride)["shrink"]
        [det] = boxes_from_map(prob, map_stride=stride, box_threshold=0.5)
        assert np.abs(det.quad.mean(axis=0) - box.mean(axis=0)).max() < 1 + stride / 2, (stride, det.quad)
        assert (det.quad.min(axis=0) >= box.min(axis=0) - 1).all() and (det.quad.max(axis=0) <= box.max(axis=0) + 1).all()
        found = np.ptp(det.quad, axis=0)
        assert found[0] > 0.9 * 160 and found[1] > 0.7 * 40, (stride, found)


# ----- post-processing and runtime geometry -----
def test_quads_come_back_in_original_pixels():
    """TextDetector (the code OnnxDetector runs) maps boxes from the resized input back to the original image."""
    cfg = DetectorConfig(arch="db_tiny", max_side=256, unclip_ratio=0.01)  # no growth: the map is the box itself
    image = np.zeros((300, 500, 3), np.uint8)
    truth = np.array(quad(100, 50, 300, 100), np.float32)
    size = input_size(300, 500, 256)
    assert size == (160, 256)
    sy, sx = size[0] / 300, size[1] / 500

    for stride in (1, 4):
        def fake_net(batch, stride=stride):  # the truth box, drawn where the net would see it, at the map's stride
            assert batch.shape == (1, 3, *size)
            word = make_targets(size, [TextRegion(truth * [sx, sy])], shrink_ratio=0.999, stride=stride)["shrink"]
            return np.stack([word, np.zeros_like(word)])[None]

        found = TextDetector(fake_net, cfg).detect(image)
        assert found["line"] == [] and len(found["word"]) == 1
        assert np.abs(found["word"][0].quad - truth).max() < 2 * stride + 2, (stride, found["word"][0].quad)
        assert found["word"][0].quad.dtype == np.float32 and found["word"][0].score > 0.9


def test_order_quad_and_box_cap():
    assert order_quad(np.array([[5, 9], [5, 0], [0, 0], [0, 9]])).tolist() == quad(0, 0, 5, 9)
    prob = np.zeros((64, 256), np.float32)
    for i in range(8):
        prob[20:40, i * 30 + 2:i * 30 + 22] = 0.7 + i * 0.03
    found = boxes_from_map(prob, max_boxes=3)
    assert len(found) == 3 and [round(d.score, 2) for d in found] == [0.91, 0.88, 0.85]


def test_fallback_matcher_follows_the_protocol():
    gt = [{"quad": quad(0, 0, 100, 20), "level": "word"}, {"quad": quad(0, 40, 100, 60), "level": "word"},
          {"quad": quad(200, 0, 300, 20), "level": "word", "ignore": True}, {"quad": quad(0, 80, 90, 95), "level": "line"}]
    preds = [np.array(quad(2, 1, 101, 21)), np.array(quad(205, 2, 295, 18)), np.array(quad(400, 0, 450, 10))]
    assert match_detections(preds, gt, level="word") == {"tp": 1, "fp": 1, "fn": 1}


# ----- dataset -----
def test_dataset_yields_consistent_samples(scenes, word_scenes):
    cfg = tiny_config(scenes, Path("unused"), data=[SceneSource(str(scenes)), SceneSource(str(word_scenes), rotate90=0.5)])
    folders = [open_scene_folder(s) for s in cfg.data]
    assert folders[0].levels == ["word", "line"] and folders[1].levels == ["word"]
    ds = DetectionDataset(folders, cfg)
    seen = set()
    for n in range(10):
        s = ds[n]
        assert s["image"].shape == (3, 128, 128) and s["image"].dtype == torch.float32
        for k in ("shrink", "shrink_mask", "thresh", "thresh_mask"):
            assert s[k].shape == (2, 128, 128)
        sup = s["supervised"].tolist()
        seen.add(tuple(sup))
        assert sup[0] == 1  # both folders label words
        if sup[1] == 0:  # the word-only folder: the line channel is not supervised anywhere
            assert s["shrink_mask"][1].sum() == 0 and s["thresh_mask"][1].sum() == 0
        assert ((s["shrink"] > 0) <= (s["shrink_mask"] > 0)).all()  # kernels never sit in don't-care pixels
    assert seen == {(1.0, 1.0), (1.0, 0.0)}
    assert torch.equal(ds[3]["image"], ds[3]["image"]) and torch.equal(ds[3]["shrink"], ds[3]["shrink"])
    cfg.loss_stride = 4
    assert ds[0]["shrink"].shape == (2, 32, 32)


def test_incomplete_sources_only_supervise_near_their_boxes(scenes):
    cfg = tiny_config(scenes, Path("unused"), data=[SceneSource(str(scenes), complete=False)])
    ds = DetectionDataset([open_scene_folder(cfg.data[0])], cfg)
    fractions = [float(ds[n]["shrink_mask"][0].mean()) for n in range(6)]
    assert max(fractions) < 0.9  # the background of these images is never a negative


def test_crops_mark_cut_boxes_and_holdout_is_stable(scenes):
    window = (0, 0, 100, 100)
    assert _visible_fraction(np.array(quad(10, 10, 50, 30), np.float64), window) == pytest.approx(1.0)
    assert _visible_fraction(np.array(quad(80, 10, 120, 30), np.float64), window) == pytest.approx(0.5, abs=0.02)
    images = read_scene_labels(scenes)
    train, held = split_holdout(images, 2)
    train2, held2 = split_holdout(list(reversed(images)), 2)
    assert {i.name for i in held} == {i.name for i in held2} and len(train) == len(images) - 2
    with pytest.raises(DatasetError):
        split_holdout(images, len(images))


def test_bad_labels_and_missing_sources(tmp_path, scenes):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "labels.jsonl").write_text('{"image": "images/x.png", "regions": []}\n')
    with pytest.raises(DatasetError, match="missing"):
        read_scene_labels(tmp_path / "bad")
    messages = []
    found = expand_sources([SceneSource(str(tmp_path / "nothing" / "*")), SceneSource(str(scenes.parent / "*"), weight=2)],
                           log=messages.append)
    assert [s.path for s in found] == [str(scenes)] and found[0].weight == 2
    assert "skipping" in messages[0]
    assert [s.path for s in expand_sources([SceneSource(str(scenes.parent))])] == [str(scenes)]  # a folder of sets
    with pytest.raises(ConfigError, match="evaluation only"):
        DetectTrainConfig(data=[SceneSource(str(REPO.parent / "shared" / "eval" / "scenes" / "x"))])


# ----- training -----
def test_training_lowers_the_loss_and_writes_its_files(scenes, tmp_path):
    import csv

    from crnn_ocr.detect.train import train_detector

    cfg = tiny_config(scenes, tmp_path / "run", steps=12, data=[SceneSource(str(scenes))])
    result = train_detector(cfg, log=lambda *_: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    assert result.step == 12 and (tmp_path / "run" / "best.pt").exists()  # no validation: best is the last


def test_best_checkpoint_can_follow_one_held_out_set(scenes, word_scenes, tmp_path):
    from crnn_ocr.detect.train import train_detector

    sources = [SceneSource(str(scenes), holdout=2), SceneSource(str(word_scenes), holdout=2)]
    with pytest.raises(ConfigError, match="words/word"):
        train_detector(tiny_config(scenes, tmp_path / "bad", data=sources, select_by="words/line"), log=lambda *_: None)
    with pytest.raises(ConfigError, match="select_by"):
        tiny_config(scenes, tmp_path / "x", select_by="synth")
    result = train_detector(tiny_config(scenes, tmp_path / "run", data=sources, steps=4, val_every=2,
                                        select_by="words/word"), log=lambda *_: None)
    by_words = [h["sets"]["words/word"]["hmean"] for h in result.history]
    assert result.best["by"] == "words/word" and result.best["hmean"] == max(by_words)
    assert result.best["step"] == result.history[by_words.index(max(by_words))]["step"]


def test_resume_is_exact(scenes, tmp_path):
    from crnn_ocr.detect.train import train_detector

    straight = train_detector(tiny_config(scenes, tmp_path / "a"), log=lambda *_: None)
    half = train_detector(tiny_config(scenes, tmp_path / "b"), stop_after=3, log=lambda *_: None)
    assert half.step == 3 and "as asked" in half.stopped
    with pytest.raises(ConfigError, match="resume"):
        train_detector(tiny_config(scenes, tmp_path / "b"), log=lambda *_: None)
    with pytest.raises(ConfigError, match="db_tiny run"):
        train_detector(tiny_config(scenes, tmp_path / "b", model=DetectorConfig(arch="db_small", train_size=128)),
                       resume=True, log=lambda *_: None)
    resumed = train_detector(tiny_config(scenes, tmp_path / "b"), resume=True, log=lambda *_: None)
    assert straight.step == resumed.step == 6
    a = load_detector_checkpoint(tmp_path / "a" / "last.pt")
    b = load_detector_checkpoint(tmp_path / "b" / "last.pt")
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    exp_a = a["train_state"]["optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(exp_a, b["train_state"]["optimizer"]["state"][0]["exp_avg"])


def test_averaged_detector_holds_the_mean_weights(tmp_path):
    from crnn_ocr.detect.nets import average_detectors, create_detector, save_detector

    cfg = DetectorConfig(arch="db_tiny", train_size=128)
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"{seed}.pt")
        save_detector(paths[-1], create_detector(cfg), cfg)
    model, model_cfg = average_detectors(paths)
    a, b = (load_detector_checkpoint(p)["state_dict"] for p in paths)
    mean = model.state_dict()
    changed = [k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k])]
    assert changed and model_cfg.arch == "db_tiny"
    for name in changed:
        assert torch.allclose(mean[name], (a[name] + b[name]) / 2, atol=1e-6)
    other = DetectorConfig(arch="db_small", train_size=128)
    save_detector(tmp_path / "small.pt", create_detector(other), other)
    with pytest.raises(CheckpointError, match="cannot average"):
        average_detectors([paths[0], tmp_path / "small.pt"])


def test_device_is_checked_before_training(scenes, tmp_path):
    from crnn_ocr.detect.train import train_detector

    with pytest.raises(ConfigError, match="device must be"):
        tiny_config(scenes, tmp_path / "x", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            train_detector(tiny_config(scenes, tmp_path / "y", device="cuda"), log=lambda *_: None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_a_gpu_writes_checkpoints_that_load_on_the_cpu(scenes, tmp_path):
    from crnn_ocr.detect.train import train_detector

    lines = []
    result = train_detector(tiny_config(scenes, tmp_path / "gpu", device="cuda", val_every=6), log=lines.append)
    assert result.step == 6 and any("on cuda" in line for line in lines)
    data = load_detector_checkpoint(tmp_path / "gpu" / "last.pt")
    assert all(t.device.type == "cpu" for t in data["state_dict"].values())
    assert result.history and 0.0 <= result.history[-1]["hmean"] <= 1.0


def test_loader_workers_draw_the_same_samples(scenes, tmp_path):
    """Samples are a function of (seed, index): a worker process trains the same weights (and does not hang
    although this process has already used OpenCV's thread pool)."""
    from crnn_ocr.detect.train import train_detector

    cv2.resize(np.zeros((600, 800, 3), np.uint8), (300, 400))
    for workers in (0, 1):
        train_detector(tiny_config(scenes, tmp_path / f"w{workers}", steps=2, workers=workers), log=lambda *_: None)
    a, b = (load_detector_checkpoint(tmp_path / f"w{w}" / "last.pt")["state_dict"] for w in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_and_stops(scenes, tmp_path):
    from crnn_ocr.detect.train import train_detector

    def log(line):
        if line.startswith("step 2:"):
            os.kill(os.getpid(), signal.SIGTERM)

    result = train_detector(tiny_config(scenes, tmp_path / "run"), log=log)
    assert result.stopped.startswith("stopped by SIGTERM") and result.step == 3  # the step under way is finished
    assert load_detector_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["step"] == 3


def test_sigterm_to_the_whole_process_group_still_saves(scenes, tmp_path):
    """A scheduler's preemption signals every process of the job: the loader worker must leave it to training."""
    import multiprocessing

    from crnn_ocr.detect.train import train_detector

    def log(line):
        if line.startswith("step 2:"):
            workers = multiprocessing.active_children()
            assert workers
            for worker in workers:
                os.kill(worker.pid, signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    result = train_detector(tiny_config(scenes, tmp_path / "run", workers=1), log=log)
    assert result.stopped.startswith("stopped by SIGTERM") and result.step == 3
    assert not multiprocessing.active_children()  # stopped by training: at exit its SIGTERM could not end it
    assert load_detector_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["step"] == 3


# ----- checkpoints -----
def test_checkpoints_load_with_weights_only_and_foreign_files_are_refused(trained, tmp_path, tiny_checkpoint):
    raw = torch.load(trained / "last.pt", map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT and raw["arch"] == "db_tiny" and set(raw) >= {"config", "state_dict", "train_state"}
    model, cfg = load_detector(trained / "best.pt")
    assert cfg.arch == "db_tiny" and not model.training
    with pytest.raises(CheckpointError, match="not a crnn_ocr detector"):
        load_detector(tiny_checkpoint)  # a recogniser's checkpoint
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "config": Path("x")}, evil)  # holds an object that is not plain data
    with pytest.raises(CheckpointError):
        load_detector(evil)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_detector(tmp_path / "junk.pt")


# ----- export and the torch-free runtime -----
@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    from crnn_ocr.detect.export import export_detector

    out = tmp_path_factory.mktemp("onnx") / "detector.onnx"
    report = export_detector(trained / "best.pt", out, int8="static")
    assert report["checker"] == "passed" and report["parity"]["max_abs_diff"] < 1e-4
    assert {(c["height"], c["width"]) for c in report["parity"]["cases"]} >= {(96, 160), (320, 480)}
    assert report["size_bytes"] < ONNX_BUDGET
    assert report["int8"]["binary_agreement_vs_fp32"] > 0.95
    return out


def test_export_carries_the_config_and_runs_like_torch(exported, trained, scenes):
    from crnn_ocr.detect.evaluate import TorchDetector
    from crnn_ocr.detect.runtime import OnnxDetector

    det = OnnxDetector(exported)
    model, cfg = load_detector(trained / "best.pt")
    assert det.cfg == cfg and det.metadata["format"] == "crnn_ocr.detector.onnx/1"
    image = cv2.cvtColor(cv2.imread(str(scenes / "images" / "000.png")), cv2.COLOR_BGR2RGB)
    maps, size, image_size = det.maps(image)
    assert maps.shape == (2, *size) and image_size == (192, 256)
    torch_maps, _, _ = TorchDetector(model).maps(image)
    assert np.abs(maps - torch_maps).max() < 1e-4
    gray = det.detect(image[:, :, 0])  # gray input is accepted
    assert set(gray) == {"word", "line"}
    result = evaluate_detector(exported, scenes, limit=3)
    assert result["images"] == 3 and set(result["levels"]) == {"word", "line"}
    assert set(result["levels"]["word"]) >= {"tp", "fp", "fn", "precision", "recall", "hmean"}


def test_foreign_onnx_and_torch_files_are_refused(exported, tmp_path, tiny_checkpoint):
    import onnx

    from crnn_ocr.detect.runtime import OnnxDetector

    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="not a crnn_ocr text detector"):
        OnnxDetector(tmp_path / "bare.onnx")
    with pytest.raises(CheckpointError):
        OnnxDetector(tiny_checkpoint)


def test_onnx_detector_returns_boxes_in_original_pixels(tmp_path):
    """A hand-built ONNX "detector" whose maps are sigmoid(input channels 0 and 1): a red rectangle in a large image
    must come back where it is, through OnnxDetector's resize, metadata and post-processing."""
    import onnx
    from onnx import TensorProto, helper

    from crnn_ocr.detect.runtime import OnnxDetector, detector_metadata

    graph = helper.make_graph(
        [helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["two"]),
         helper.make_node("Sigmoid", ["two"], ["maps"])],
        "fake", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["b", 2, "h", "w"])],
        [helper.make_tensor("starts", TensorProto.INT64, [1], [0]), helper.make_tensor("ends", TensorProto.INT64, [1], [2]),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cfg = DetectorConfig(arch="db_tiny", max_side=512, unclip_ratio=0.01, min_size=1)
    for key, value in detector_metadata(cfg).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp_path / "fake.onnx"))
    image = np.zeros((900, 1400, 3), np.uint8)
    image[300:400, 200:800, 0] = 255  # red: channel 0, the word map; green stays dark, no line
    det = OnnxDetector(tmp_path / "fake.onnx")
    maps, size, original = det.maps(image)
    assert size == (320, 512) and original == (900, 1400) and maps.shape == (2, 320, 512)
    found = det.detect(image)
    assert found["line"] == [] and len(found["word"]) == 1
    truth = np.array(quad(200, 300, 799, 399), np.float32)
    assert np.abs(found["word"][0].quad - truth).max() < 6, found["word"][0].quad  # 2.7 original px per input px


def test_runtime_works_without_torch(exported, scenes):
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from crnn_ocr.detect.runtime import OnnxDetector
from crnn_ocr.detect import postprocess, targets, config, labels
from crnn_ocr.detect.evaluate import evaluate_detector
det = OnnxDetector({str(exported)!r}, threads=1)
out = det.detect(np.full((100, 180, 3), 200, np.uint8))
assert set(out) == {{"word", "line"}}, out
assert evaluate_detector({str(exported)!r}, {str(scenes)!r}, limit=2)["images"] == 2
assert not [m for m in sys.modules if m.startswith("torch") and sys.modules[m] is not None]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
