"""`ocr export`: a checkpoint to one self-describing `.onnx` file, checked against torch.

Registered on the `ocr` group in `crnn_ocr.cli`. torch and onnx are imported inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from crnn_ocr.cli.common import fail, handles_errors


@click.command()
@click.option("--model", "-m", "model", required=True, type=click.Path(dir_okay=False), help="Checkpoint (.pt) to export.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Output .onnx file (default: beside the checkpoint).")
@click.option("--opset", type=click.IntRange(13, 23), default=17, show_default=True)
@click.option("--int8", is_flag=True, help="Also write OUT.int8.onnx (dynamic int8 LSTM/MatMul weights).")
@click.option("--data", "-d", help="Labelled data to score the exported model(s) on (reports the int8 accuracy change).")
@click.option("--limit", type=click.IntRange(0), default=0, help="Score only the first N samples of --data.")
@click.option("--no-check", is_flag=True, help="Skip the ONNX checker and the torch parity check.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@handles_errors
def export(model, out, opset, int8, data, limit, no_check, as_json):
    """Export a checkpoint to ONNX (dynamic batch and width, vocabulary and preprocessing in the metadata)."""
    if not model.endswith(".pt"):
        fail(f"{model}: expected a .pt checkpoint (an .onnx file is already exported)")
    out = out or str(Path(model).with_suffix(".onnx"))
    if not out.endswith(".onnx"):
        fail(f"{out}: the output file must end in .onnx")
    from crnn_ocr.export import export_onnx

    report = export_onnx(model, out, opset=opset, int8=int8, check=not no_check, data=data, limit=limit)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
        return
    click.echo(f"wrote {report['onnx']} ({report['size_bytes'] / 1e6:.2f} MB, {report['arch']}, opset {opset})")
    if "parity" in report:
        p = report["parity"]
        shapes = ", ".join(f"{c['batch']}x{c['width']}" for c in p["cases"])
        click.echo(f"checker passed; max |onnxruntime - torch| logit difference {p['max_abs_diff']:.2e} "
                   f"over batch x width {shapes}")
    if "score" in report:
        s = report["score"]
        click.echo(f"fp32 on {s['name']} ({s['samples']} samples, {s['protocol']}): accuracy {s['protocol_accuracy']:.4f}, "
                   f"CER {s['protocol_cer']:.4f}")
    if "int8" in report:
        q = report["int8"]
        click.echo(f"wrote {q['onnx']} ({q['size_bytes'] / 1e6:.2f} MB); max |int8 - fp32| logit difference "
                   f"{q['max_abs_diff_vs_fp32']:.2e}, greedy class agreement {q['argmax_agreement_vs_fp32']:.4f}")
        if "score" in q:
            click.echo(f"int8 on {q['score']['name']}: accuracy {q['score']['protocol_accuracy']:.4f} "
                       f"({q['accuracy_change']:+.4f}), CER {q['score']['protocol_cer']:.4f} ({q['cer_change']:+.4f})")
        else:
            click.echo("int8 accuracy change: not measured (pass --data LABELLED_SET)")
