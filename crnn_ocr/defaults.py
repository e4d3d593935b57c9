"""Where the shipped model lives (inside the installed package, or in `weights/` of a checkout)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_STEM = "crnn_default"


def weights_dirs() -> list[Path]:
    dirs = []
    try:
        from importlib.resources import files

        dirs.append(Path(str(files("crnn_ocr.weights"))))
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    dirs.append(Path(__file__).resolve().parent.parent / "weights")
    return dirs


def default_model(backend: str = "onnx") -> Path | None:
    """The shipped model file for a backend ('onnx' or 'torch'), or None if none is installed."""
    suffix = ".onnx" if backend == "onnx" else ".pt"
    for d in weights_dirs():
        candidate = d / f"{DEFAULT_MODEL_STEM}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def find_verifier(suffix: str = ".onnx", weights_dir: str | Path | None = None) -> Path | None:
    """The shipped text / non-text verifier: the first `*verifier*<suffix>` (by name) in `weights_dir`, or by
    default in the installed package's weights or a checkout's `weights/`; None if there is none."""
    folders = [Path(weights_dir)] if weights_dir is not None else weights_dirs()
    for folder in folders:
        found = sorted(folder.glob(f"*verifier*{suffix}")) if folder.is_dir() else []
        if found:
            return found[0]
    return None
