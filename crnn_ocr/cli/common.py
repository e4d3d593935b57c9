"""What every `ocr` command shares: one-line errors, exit codes and the options several commands take."""

from __future__ import annotations

import functools
import sys

import click

from crnn_ocr.defaults import DEFAULT_DICTIONARY, WORD_LIST_LANGUAGES
from crnn_ocr.errors import OcrError


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# optional modules -> the extra of pyproject.toml that installs them
EXTRAS = {"torch": "train", "onnx": "train", "fontTools": "train", "matplotlib": "train", "pypdfium2": "pdf",
          "ray": "ray", "fastapi": "serve", "uvicorn": "serve", "starlette": "serve", "multipart": "serve",
          "python_multipart": "serve"}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The one-line message for an optional dependency that is not installed, or None for any other module."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    command = click.get_current_context(silent=True)
    what = f"`{command.command_path}`" if command is not None else "this"
    return f"{what} needs {top}, which is not installed: pip install 'crnn_ocr[{extra}]'"


def handles_errors(command):
    """Library errors become one line on stderr and exit code 1; a missing optional dependency names the extra
    to install (exit 2); a closed output pipe ends quietly (exit 0, like other Unix tools); Ctrl-C exits 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OcrError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            quiet_broken_pipe()
        except ModuleNotFoundError as e:
            message = missing_extra(e)
            if message is None:
                raise
            fail(message, 2)
        except (OSError, MemoryError) as e:
            fail(f"{type(e).__name__}: {e}")

    return wrapper


def quiet_broken_pipe() -> None:
    """The reader of our output went away (`ocr recognize ... | head`): stop without a word, exit 0."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush of stdout at exit would fail again
    except (OSError, ValueError):
        pass
    sys.exit(0)


DICTIONARY_OPTION = click.option(
    "--dictionary", default=DEFAULT_DICTIONARY, show_default=True, metavar="LANG|FILE|none",
    help=f"Correct misread words towards this word list: a shipped language ({' '.join(WORD_LIST_LANGUAGES)}; "
         "only words the model's characters can write), a file with one word per line, or none for the model's raw "
         "reading (codes, plates, names).")


def dictionary_for(vocab, value: str):
    """The Dictionary `--dictionary` names for a model's vocabulary; the default is dropped, not an error, for a
    model that cannot spell its words (a digits-only model, another script)."""
    from crnn_ocr.errors import VocabError
    from crnn_ocr.text.dictionary import load_dictionary

    if value.lower() == "none":
        return None
    try:
        return load_dictionary(value, vocab)
    except VocabError:
        if click.get_current_context().get_parameter_source("dictionary") == click.core.ParameterSource.DEFAULT:
            return None
        raise


def load_verifier_file(path, threads: int = 1):
    """The page verifier from `--verifier`: an exported `.onnx` (torch-free) or a `.pt` training checkpoint."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".pt":
        from crnn_ocr.dbn.verifier import TextVerifier

        return TextVerifier.load(path)
    from crnn_ocr.page.verifier import load_verifier

    return load_verifier(path, threads)
