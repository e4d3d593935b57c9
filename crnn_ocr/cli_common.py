"""What every `ocr` command shares: one-line errors and exit codes. Every cli_* module imports it, so any of
them can be imported first without a circular import through `crnn_ocr.cli`."""

from __future__ import annotations

import functools
import sys

import click

from crnn_ocr.errors import OcrError


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handles_errors(command):
    """Library errors become one line on stderr and exit code 1; Ctrl-C exits 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OcrError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (OSError, MemoryError) as e:
            fail(f"{type(e).__name__}: {e}")

    return wrapper
