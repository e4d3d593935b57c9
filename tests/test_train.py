"""Training: loss goes down, exact resume, fine-tuning with a new vocabulary, DDP on gloo, config errors."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crnn_ocr.config import DataSource, ModelConfig, TrainConfig
from crnn_ocr.errors import ConfigError
from crnn_ocr.models.checkpoint import average_checkpoints, load_checkpoint, load_model
from crnn_ocr.text.vocab import Vocab
from crnn_ocr.train.data import Collate, StepSampler, open_training_sources
from crnn_ocr.train.loop import kept_path, lr_at, train

REPO = Path(__file__).resolve().parents[1]
GLIBC = platform.libc_ver()[0] == "glibc"
TINY_MODEL = {"arch": "crnn_s", "hidden": 32}


def tiny_config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(train=[DataSource(str(data))], out=str(out), model=ModelConfig(**TINY_MODEL), vocab="default",
                steps=12, batch_size=8, lr=2e-3, warmup_steps=2, log_every=2, checkpoint_every=4, val_every=6,
                threads=1, seed=7, augment=0.5)
    base.update(kw)
    return TrainConfig(**base)


def read_log(out: Path) -> list[dict]:
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_loss_decreases(rendered_lmdb, tmp_path):
    cfg = tiny_config(rendered_lmdb, tmp_path / "run", steps=40, batch_size=16, lr=3e-3, log_every=5,
                      val=[str(rendered_lmdb)], val_every=40, val_limit=32, augment=0.0)
    result = train(cfg, progress=False)
    losses = [float(r["loss"]) for r in read_log(tmp_path / "run") if r["loss"]]
    assert result.step == 40
    assert losses[-1] < 0.6 * losses[0], losses
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]["step"] == 40
    assert result.history and 0.0 <= result.history[-1]["accuracy"] <= 1.0


def test_keep_every_keeps_weights_for_averaging(rendered_lmdb, tmp_path):
    out = tmp_path / "run"
    train(tiny_config(rendered_lmdb, out, keep_every=4), progress=False)
    kept = sorted((out / "kept").iterdir())
    assert kept == [kept_path(out, s) for s in (4, 8, 12)]
    assert load_checkpoint(kept[-1])["state_dict"].keys() == load_checkpoint(out / "last.pt")["state_dict"].keys()
    assert not load_checkpoint(kept[0])["train_state"]  # weights only: no optimiser state
    last = load_checkpoint(out / "last.pt")["state_dict"]
    first = load_checkpoint(kept[0])["state_dict"]
    mean, _, _ = average_checkpoints(kept)
    name = next(k for k, v in last.items() if v.is_floating_point() and "weight" in k)
    assert not torch.equal(first[name], last[name])
    assert not torch.equal(mean.state_dict()[name], last[name])


@pytest.mark.slow
def test_resume_is_exact(rendered_lmdb, tmp_path):
    """Stopped at step 6 and resumed, a run ends with the same weights as one that never stopped."""
    model = {**TINY_MODEL, "dropout": 0.1}
    straight = tiny_config(rendered_lmdb, tmp_path / "a", model=ModelConfig(**model))
    train(straight, progress=False)
    split = tiny_config(rendered_lmdb, tmp_path / "b", model=ModelConfig(**model))
    first = train(split, progress=False, stop_after=6)
    assert first.step == 6 and "stopped" in first.stopped
    second = train(split, progress=False)
    assert second.step == 12
    a = load_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow
def test_sigterm_stops_after_the_step_saves_and_resumes_exactly(rendered_lmdb, tmp_path, monkeypatch):
    import signal

    import crnn_ocr.train.loop as loop

    straight = tiny_config(rendered_lmdb, tmp_path / "a")
    train(straight, progress=False)

    def lr_sending_sigterm(step, cfg):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of step 6...
            os.kill(os.getpid(), signal.SIGTERM)  # ...twice: the second must not cut the step short
        return lr_at(step, cfg)

    monkeypatch.setattr(loop, "lr_at", lr_sending_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    split = tiny_config(rendered_lmdb, tmp_path / "b")
    first = train(split, progress=False)
    assert first.step == 6 and first.stopped == "stopped by SIGTERM after step 6"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    assert load_checkpoint(tmp_path / "b" / "last.pt")["train_state"]["step"] == 6
    monkeypatch.setattr(loop, "lr_at", lr_at)
    assert train(split, progress=False).step == 12
    a = load_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_resume_checks_the_model_settings_and_reports_changed_ones(rendered_lmdb, tmp_path):
    first = tiny_config(rendered_lmdb, tmp_path / "run")
    train(first, progress=False, stop_after=4)
    other_arch = tiny_config(rendered_lmdb, tmp_path / "run", model=ModelConfig(arch="crnn_m", hidden=32))
    with pytest.raises(ConfigError, match="other model settings.*crnn_m"):
        train(other_arch, progress=False)
    messages = []
    train(tiny_config(rendered_lmdb, tmp_path / "run", lr=1e-3), progress=False, log=messages.append)
    assert any(m.startswith("warning: resuming with changed lr (0.002 -> 0.001)") for m in messages)


def test_resume_after_a_kill_never_repeats_a_log_step_and_drops_stale_temporaries(rendered_lmdb, tmp_path):
    cfg = tiny_config(rendered_lmdb, tmp_path / "run", val_every=100)
    train(cfg, progress=False, stop_after=4)  # last.pt at step 4
    with open(tmp_path / "run" / "log.csv", "a") as f:  # what a process killed at step 6 had logged past it
        f.write("6,0.001,9.9,1.0,0,0,,,1\n")
    stale = tmp_path / "run" / "last.pt.k3j2.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(cfg, progress=False)
    steps = [int(r["step"]) for r in read_log(tmp_path / "run")]
    assert steps == sorted(set(steps)) and steps[-1] == 12 and "9.9" not in {r["loss"] for r in read_log(tmp_path / "run")}
    assert not stale.exists()


def test_training_on_unusable_data_fails_and_writes_no_model(tmp_path):
    from crnn_ocr.datasets.lmdb_writer import LmdbWriter
    from crnn_ocr.errors import DatasetError

    garbage = tmp_path / "garbage.lmdb"
    with LmdbWriter(garbage) as writer:
        for i in range(16):
            writer.add(b"not an image at all %d" % i, "word", (40, 20))
    with pytest.raises(DatasetError, match="no usable training sample in steps 1-2: 16 unreadable images"):
        train(tiny_config(garbage, tmp_path / "run", steps=4, val_every=100), progress=False)  # stops at the first log
    assert not (tmp_path / "run" / "best.pt").exists()


def test_a_run_that_cannot_read_most_of_its_samples_stops_and_says_so(rendered_lmdb, tmp_path):
    from crnn_ocr.datasets.lmdb_writer import LmdbWriter
    from crnn_ocr.errors import DatasetError

    garbage = tmp_path / "garbage.lmdb"
    with LmdbWriter(garbage) as writer:
        for i in range(16):
            writer.add(b"not an image at all %d" % i, "word", (40, 20))
    cfg = tiny_config(rendered_lmdb, tmp_path / "run", steps=8, val_every=100, workers=1,
                      train=[DataSource(str(rendered_lmdb), ratio=0.2), DataSource(str(garbage), ratio=0.8)])
    with pytest.raises(DatasetError, match=r"of the samples drawn by step 2 \(\d+%\) could not be read"):
        train(cfg, progress=False)
    # the loader worker (which ignores SIGTERM) is gone: an exit would otherwise wait for it forever
    assert not multiprocessing.active_children()
    rows = read_log(tmp_path / "run")
    assert rows[-1]["step"] == "2" and int(rows[-1]["skipped_corrupt"]) > 8
    # the same LMDB read by a forked loader worker after this process has opened it: every sample loads
    assert train(tiny_config(rendered_lmdb, tmp_path / "fine", steps=4, val_every=100, workers=1), progress=False).step == 4
    assert {row["skipped_corrupt"] for row in read_log(tmp_path / "fine")} == {"0"}


def test_finetune_with_new_vocabulary(rendered_lmdb, tmp_path):
    base = tiny_config(rendered_lmdb, tmp_path / "base", steps=4)
    train(base, progress=False)
    old_model, _, old_vocab = load_model(tmp_path / "base" / "last.pt")
    new_chars = "".join(sorted(set(old_vocab.chars) - set("xyz"))) + "ΩΣ"
    tune = tiny_config(rendered_lmdb, tmp_path / "tune", steps=2, init=str(tmp_path / "base" / "last.pt"),
                       vocab=new_chars, lr=1e-9, warmup_steps=0, augment=0.0)
    result = train(tune, progress=False)
    assert result.report["init"]["shared_chars"] == len(new_chars) - 2
    assert result.report["init"]["new_chars"] == 2
    tuned_ckpt = tmp_path / "tune" / "last.pt"
    new_model, _, new_vocab = load_model(tuned_ckpt)
    assert new_vocab.chars == new_chars
    old_head, new_head = old_model.head.weight.detach(), new_model.head.weight.detach()
    for i, c in enumerate(new_vocab.chars):
        if c in old_vocab.chars:
            j = old_vocab.chars.index(c) + 1
            assert torch.allclose(new_head[i + 1], old_head[j], atol=1e-5), c
    assert torch.allclose(new_head[0], old_head[0], atol=1e-5)


def test_freeze_cnn_keeps_convolutions(rendered_lmdb, tmp_path):
    base = tiny_config(rendered_lmdb, tmp_path / "base", steps=2)
    train(base, progress=False)
    frozen = tiny_config(rendered_lmdb, tmp_path / "frozen", steps=3, init=str(tmp_path / "base" / "last.pt"),
                         freeze_cnn=True)
    train(frozen, progress=False)
    before = load_checkpoint(tmp_path / "base" / "last.pt")["state_dict"]
    after = load_checkpoint(tmp_path / "frozen" / "last.pt")["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("cnn."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("rnn."))


def test_train_only_the_head_keeps_every_other_tensor_and_statistic(rendered_lmdb, tmp_path):
    base = tiny_config(rendered_lmdb, tmp_path / "base", steps=2)
    train(base, progress=False)
    head_only = tiny_config(rendered_lmdb, tmp_path / "head", steps=3, init=str(tmp_path / "base" / "last.pt"),
                            train_only=["head"])
    result = train(head_only, progress=False)
    before = load_checkpoint(tmp_path / "base" / "last.pt")["state_dict"]
    after = load_checkpoint(tmp_path / "head" / "last.pt")["state_dict"]
    kept = [k for k in before if not k.startswith("head.")]
    assert any("running_mean" in k for k in kept)  # BatchNorm statistics are among what must stay
    assert all(torch.equal(before[k], after[k]) for k in kept)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert result.report["trained_parameters"] == before["head.weight"].numel() + before["head.bias"].numel()
    assert "train_only" not in base.to_dict() and head_only.to_dict()["train_only"] == ["head"]


def test_train_only_names_a_part_the_model_lacks_says_which_it_has(rendered_lmdb, tmp_path):
    with pytest.raises(ConfigError, match=r"no 'rectifier'; its parts are cnn, rnn, head"):
        train(tiny_config(rendered_lmdb, tmp_path / "run", steps=1, train_only=["rectifier"]), progress=False)


RUN_UNTIL_SIGNALLED = """
import json, sys
from crnn_ocr.config import DataSource, ModelConfig, TrainConfig
from crnn_ocr.train.loop import train
cfg = TrainConfig(train=[DataSource(sys.argv[1])], out=sys.argv[2], model=ModelConfig(**json.loads(sys.argv[3])),
                  vocab="default", steps=100000, batch_size=8, warmup_steps=0, log_every=1, checkpoint_every=1000,
                  val_every=100000, threads=1, workers=1, seed=0)
result = train(cfg, progress=False)
print(json.dumps({"step": result.step, "stopped": result.stopped}))
"""


def test_a_run_signalled_with_its_loader_worker_saves_and_exits(rendered_lmdb, tmp_path):
    """SIGTERM to the whole process group (a scheduler, `kill -- -PGID`): the worker ignores it, the trainer
    finishes its step, saves and exits; the exit must not wait for the worker (it did, for ever)."""
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", RUN_UNTIL_SIGNALLED, str(rendered_lmdb), str(out),
                             json.dumps(TINY_MODEL)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for _ in range(600):  # until a few steps are logged (or the run failed)
            if proc.poll() is not None or ((out / "log.csv").is_file() and len(read_log(out)) >= 3):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)  # a hang, not a speed: the run used to never exit
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["stopped"] == f"stopped by SIGTERM after step {result['step']}" and (out / "last.pt").is_file()


def test_sampler_is_deterministic_and_bucketed(rendered_lmdb):
    entries, _ = open_training_sources([DataSource(str(rendered_lmdb))], Vocab.default())
    a = StepSampler(entries, 16, seed=1, chunks=4)
    b = StepSampler(entries, 16, seed=1, chunks=4)
    assert [a.batch(s) for s in range(9)] == [b.batch(s) for s in range(9)]
    ranks = [StepSampler(entries, 16, seed=1, chunks=4, rank=r, world=2).batch(5) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(a.batch(5))

    def padding_share(chunks: int) -> float:
        s = StepSampler(entries, 16, seed=1, chunks=chunks)
        pad = total = 0.0
        for step in range(16):
            widths = np.array([entries[k[0]].aspect[list(entries[k[0]].valid).index(k[1])] for k in s.batch(step)])
            pad += (widths.max() - widths).sum()
            total += widths.max() * len(widths)
        return pad / total

    assert padding_share(8) < padding_share(1)


def test_collate_skips_and_counts_labels_too_long(tiny_vocab):
    cfg = ModelConfig(height=32)
    fits = (np.zeros((32, 40), np.uint8), [1, 2, 3])
    too_long = (np.zeros((32, 16), np.uint8), [1, 2, 3, 4, 5])  # 16 px -> 4 frames, 5 labels
    batch = Collate(cfg)([fits, too_long, None])
    assert batch["too_long"] == 1 and batch["corrupt"] == 1
    assert batch["images"].shape[0] == 1 and batch["target_lengths"].tolist() == [3]


def test_lr_schedule():
    cfg = TrainConfig(train=[DataSource("x")], steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 99))


@pytest.mark.parametrize("bad", [{"steps": 0}, {"batch_size": -1}, {"schedule": "linear"}, {"device": "tpu"},
                                 {"augment": 2.0}, {"precision": "int4"}, {"keep_every": -1}])
def test_bad_config_values(bad):
    with pytest.raises(ConfigError):
        TrainConfig(train=[DataSource("x")], **bad)


def test_bad_config_file_gives_one_line_error(tmp_path):
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('steps = 10\nbogus_key = 1\n[[train]]\npath = "x"\n')
    result = CliRunner().invoke(main, ["train", "--config", str(bad)])
    assert result.exit_code == 1
    assert "bogus_key" in result.output and "Traceback" not in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("steps = = 3")
    result = CliRunner().invoke(main, ["train", "--config", str(broken)])
    assert result.exit_code == 1 and result.output.startswith("error:")


def test_cli_train_and_eval(rendered_lmdb, tmp_path):
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    out = tmp_path / "cli_run"
    result = CliRunner().invoke(main, ["train", "--train", str(rendered_lmdb), "--out", str(out), "--steps", "3",
                                       "--batch-size", "8", "--arch", "crnn_s", "--vocab", "default", "--quiet",
                                       "--threads", "1"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["eval", "--model", str(out / "last.pt"), "--data", str(rendered_lmdb),
                                       "--limit", "20", "--json"])
    assert result.exit_code == 0, result.output
    import json

    scores = json.loads(result.output)
    assert scores[0]["samples"] == 20 and 0 <= scores[0]["cer"]
    assert scores[0]["protocol"] == "exact" and scores[0]["dictionary"] == "en"
    result = CliRunner().invoke(main, ["eval", "--model", str(out / "last.pt"), "--data", str(rendered_lmdb),
                                       "--limit", "20", "--dictionary", "none"])
    assert result.exit_code == 0 and "decoder greedy, dictionary none\n" in result.output, result.output


@pytest.mark.slow
def test_distributed_gloo_two_processes(rendered_lmdb, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(REPO / "cli.py"), "train", "--train", str(rendered_lmdb), "--out", str(out), "--steps", "4",
           "--batch-size", "8", "--arch", "crnn_s", "--vocab", "default", "--quiet", "--device", "cpu",
           "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["train_state"]["step"] == 4
    rows = read_log(out)
    assert rows and all(np.isfinite(float(r["loss"])) for r in rows if r["loss"])
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]


FAULTS_PER_64MIB_ALLOCATION = """
import resource, sys, torch
from crnn_ocr.train.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(8):
    torch.empty(16 << 20).fill_(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(16 << 20).fill_(1)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC, reason="the option sets glibc malloc parameters")
def test_keep_freed_memory_stops_refaulting_big_buffers():
    def faults(mode: str) -> float:
        run = subprocess.run([sys.executable, "-c", FAULTS_PER_64MIB_ALLOCATION, mode], capture_output=True,
                             text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return float(run.stdout)

    pages_per_buffer = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert faults("release") >= 0.9 * pages_per_buffer
    assert faults("keep") < 0.25 * pages_per_buffer  # 0-5% on a quiet machine, 10% seen with other work beside it


@pytest.mark.slow
def test_ocr_train_restarts_under_jemalloc_when_installed(rendered_lmdb, tmp_path):
    from crnn_ocr.train.allocator import find_jemalloc

    def allocator_used(*flags: str) -> str:
        run = subprocess.run([sys.executable, str(REPO / "cli.py"), "train", "--train", str(rendered_lmdb), "--out",
                              str(tmp_path / "_".join(flags or ("auto",))), "--steps", "2", "--batch-size", "4",
                              "--arch", "crnn_s", "--vocab", "default", "--quiet", "--threads", "1", *flags],
                             capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                   if k not in ("LD_PRELOAD", "CRNN_OCR_JEMALLOC_TRIED")})
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout.strip().splitlines()[-1])["allocator"]

    assert allocator_used() == ("jemalloc" if find_jemalloc() else "glibc")
    assert allocator_used("--allocator", "glibc") == "glibc"
    if GLIBC:
        assert allocator_used("--allocator=glibc-keep") == "glibc-keep"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_mixed_precision_resumes(rendered_lmdb, tmp_path):
    cfg = tiny_config(rendered_lmdb, tmp_path / "gpu", device="cuda", precision="auto", steps=4, workers=2)
    first = train(cfg, progress=False, stop_after=2)
    assert first.step == 2
    assert train(cfg, progress=False).step == 4
    assert load_checkpoint(tmp_path / "gpu" / "last.pt")["train_state"]["step"] == 4
