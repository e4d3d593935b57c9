"""docs/architecture.md holds: each layer imports only from layers below it (or itself), and the torch-free
layers never import torch, not even inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "crnn_ocr"

# layer of each top-level part of crnn_ocr; the same table as docs/architecture.md
LAYERS = {
    "errors": 0, "config": 0, "files": 0, "defaults": 0, "registry": 0,
    "text": 1, "image": 1,
    "models": 2, "datasets": 2,
    "recognize": 3, "page": 3, "detect": 3, "runtime": 3, "reader": 3, "evaluate": 3,
    "train": 4, "export": 4, "serve": 4, "bulk": 4,
    "gan": 5, "dbn": 5,
    "cli": 6,
    # the detector's training side sits with recognition's training; its runtime side stays in layer 3
    "detect.nets": 4, "detect.data": 4, "detect.train": 4, "detect.export": 4, "detect.evaluate": 4,
}
TORCH_FREE = ["errors", "config", "files", "defaults", "registry", "text", "image", "page", "runtime", "reader", "recognize.base",
              "recognize.onnx", "detect.config", "detect.postprocess", "detect.runtime", "detect.scoring",
              "detect.targets", "detect.synth", "detect.inpaint", "serve", "bulk", "bulk.ray_data"]


def part_of(module: str) -> str:
    parts = module.split(".")[1:]
    return ".".join(parts[:2]) if ".".join(parts[:2]) in LAYERS else (parts[0] if parts else "")


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("crnn_ocr", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        if name != "crnn_ocr":  # the package root is the public facade over every layer
            out.append((name, path))
    return out


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(name) for name, _ in modules()}
    assert parts <= set(LAYERS), f"give these a layer in docs/architecture.md and here: {sorted(parts - set(LAYERS))}"


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_go_down_the_layers(name, path):
    own = LAYERS[part_of(name)]
    for imported in imports_of(path):
        if not imported.startswith("crnn_ocr.") or imported.count(".") < 1:
            continue
        target = part_of(imported)
        if target in LAYERS and target != part_of(name):
            assert LAYERS[target] <= own, f"{name} (layer {own}) imports {imported} (layer {LAYERS[target]})"


def test_torch_free_layers_import_without_torch():
    guard = "import sys; sys.modules['torch'] = None; import importlib\n"
    body = "".join(f"importlib.import_module('crnn_ocr.{m}')\n" for m in TORCH_FREE if (PACKAGE / m.replace(".", "/")).exists()
                   or (PACKAGE / (m.replace(".", "/") + ".py")).exists())
    run = subprocess.run([sys.executable, "-c", guard + body], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
