"""A torch-free install (`pip install crnn_ocr`): every command that needs an extra says which, in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
for blocked in ("torch", "onnx", "fontTools", "matplotlib"):
    sys.modules[blocked] = None
from click.testing import CliRunner
from crnn_ocr.cli import main
out = {}
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    out[" ".join(args[:2])] = [result.exit_code, result.stderr if result.stderr else result.output,
                               type(result.exception).__name__ if result.exception else ""]
print(json.dumps(out))
"""


def test_commands_needing_an_extra_name_it_in_one_line(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "labels.tsv").write_text("")
    commands = [
        ["train", "--train", str(data), "--out", str(tmp_path / "run"), "-q"],
        ["export", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.onnx")],
        ["models"],
        ["data", "synth", "-n", "2", "-o", str(tmp_path / "s.lmdb"), "-q"],
        ["gan", "train", "--real", str(data), "--out", str(tmp_path / "g.pt"), "-q"],
        ["recognize", "--backend", "torch", "--model", str(tmp_path / "m.pt"), str(REPO / "README.md")],
    ]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # no font coverage cached: fontTools needed
    run = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for command, (code, text, exception) in results.items():
        assert code == 2, (command, code, text, exception)
        assert len(text.strip().splitlines()) == 1 and text.startswith("error: "), (command, text)
        assert "pip install 'crnn_ocr[train]'" in text and "Traceback" not in text, (command, text)
