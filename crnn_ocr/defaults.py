"""Where the shipped model lives (inside the installed package, or in `weights/` of a checkout)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_STEM = "crnn_default"
DEFAULT_DICTIONARY = "en"  # word list that corrects misread words in `ocr recognize` and `ocr eval`
FIRST_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl")  # word lists in data/words the default charset writes
LATIN_LANGUAGES = ("cs", "pl", "sk", "sl", "hr", "hu", "ro", "tr", "lv", "lt", "fi", "sv", "da", "nb", "is", "ca")
WORD_LIST_LANGUAGES = FIRST_LANGUAGES + LATIN_LANGUAGES


def _package_or_checkout(package: str, *checkout_path: str) -> list[Path]:
    """The folder of an installed data package, then the same folder in a checkout of the repository."""
    dirs = []
    try:
        from importlib.resources import files

        dirs.append(Path(str(files(package))))
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    dirs.append(Path(__file__).resolve().parent.parent.joinpath(*checkout_path))
    return dirs


def weights_dirs() -> list[Path]:
    return _package_or_checkout("crnn_ocr.weights", "weights")


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


def find_detector(weights_dir: str | Path | None = None) -> Path | None:
    """The shipped text detector in `weights_dir`, the installed package's weights or a checkout's `weights/`: its
    int8 file where there is one (the same held-out scores, a third less CPU time per photo: weights/README.md),
    else `text_detector.onnx`; None while none is shipped."""
    folders = [Path(weights_dir)] if weights_dir is not None else weights_dirs()
    for folder in folders:
        for name in ("text_detector.int8.onnx", "text_detector.onnx"):
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def word_list(name: str) -> Path | None:
    """A shipped word list by language code (`en`, `de`, ...), or None if there is none by that name."""
    if not name.isalpha():
        return None
    folders = _package_or_checkout("crnn_ocr.words", "data", "words")
    for folder in folders:
        candidate = folder / f"{name.lower()}.txt"
        if candidate.is_file():
            return candidate
    return None
