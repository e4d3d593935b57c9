"""The `ocr` command line: one module per command family, all registered here.

Each command parses flags, calls one library function and prints the result; library errors become one
`error:` line and a non-zero exit (`common.handles_errors`). Heavy libraries (torch, onnx) are imported inside
the commands that need them, so `ocr --help` is instant. A new command family is a module here with click
commands and one line below.
"""

from __future__ import annotations

import sys

import click

from crnn_ocr import __version__
from crnn_ocr.cli import data, dbn, detector, export, gan, recognize, serve, train
from crnn_ocr.train.allocator import restart_train_with_jemalloc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ocr")
def main() -> None:
    """crnn_ocr: read the text in images and PDFs; train, score and export recognisers and text detectors."""


for command in (recognize.recognize, train.train, train.eval_cmd, train.models, export.export, detector.detector,
                data.data, gan.gan, dbn.dbn, serve.serve):
    main.add_command(command)


def run() -> None:
    """The `ocr` executable: `ocr train` first restarts itself with jemalloc when that is installed."""
    restart_train_with_jemalloc(sys.argv)
    main()
