"""Bulk OCR with Ray Data: read every image and PDF under a folder (or any path or URI Ray reads: local, s3://,
gs://, ...) and write the results as Parquet. One row per file: path, text, confidence, pages, lines (with words,
boxes and quads), warnings, error (docs/scaling.md has the schema). Needs `pip install 'crnn_ocr[ray]'`.

One machine (starts a local Ray instance, one actor per core):

    python examples/ray_bulk.py scans/ out/ocr_parquet/
    python examples/ray_bulk.py crops/ out/crops_parquet/ --concurrency 2 --batch-size 64 --layout word

A cluster (crnn_ocr[ray] installed on every node; input and output on storage every node reaches):

    ray start --head --port=6379                          # on the head node
    ray start --address=HEAD_IP:6379                      # on each worker node
    python examples/ray_bulk.py s3://bucket/scans/ s3://bucket/ocr/ --address auto --concurrency 64

Prints a summary line (rows, errors, seconds) and exits 1 when any file could not be read.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", nargs="+", help="folders, files, globs or URIs (s3://, gs://, ...) to read")
    parser.add_argument("dst", help="folder (or URI) for the Parquet files; a local one must be new or empty")
    parser.add_argument("--address", help="join this Ray cluster (auto: the one `ray start` set up on this node); "
                                          "default: a local Ray instance")
    parser.add_argument("--concurrency", type=int, help="OCR actors, one CPU each (default: the cluster's CPUs)")
    parser.add_argument("--batch-size", type=int, default=16, help="files per actor call (default 16)")
    parser.add_argument("--model", help="recogniser .onnx (default: the shipped one)")
    parser.add_argument("--layout", choices=["auto", "page", "photo", "line", "word"], default="auto")
    parser.add_argument("--dictionary", default="en", help="LANG | FILE | none (default en), as `ocr recognize`")
    parser.add_argument("--detector", help="text detector .onnx for photos (default: the shipped one)")
    parser.add_argument("--no-detector", action="store_true", help="read photos with the document line finder")
    parser.add_argument("--no-verifier", action="store_true", help="keep every line candidate found on pages")
    parser.add_argument("--threads", type=int, default=1, help="threads (and CPUs reserved) per actor (default 1)")
    parser.add_argument("--pages", help="PDF pages to read, e.g. 1-3,7 (default all)")
    parser.add_argument("--pdf-text", choices=["auto", "ocr", "layer"], default="auto")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Read args.src into Parquet files under args.dst; returns {"rows", "errors", "seconds"}."""
    import ray

    from crnn_ocr.bulk.ray_data import read_folder_to_parquet

    if args.detector and args.no_detector:
        raise SystemExit("--detector and --no-detector exclude each other")
    if not ray.is_initialized():
        ray.init(address=args.address)
    return read_folder_to_parquet(args.src if len(args.src) > 1 else args.src[0], args.dst,
                                  concurrency=args.concurrency, batch_size=args.batch_size, model=args.model,
                                  layout=args.layout, dictionary=args.dictionary,
                                  detector=False if args.no_detector else (args.detector or True),
                                  verifier=not args.no_verifier, threads=args.threads, pages=args.pages,
                                  pdf_text=args.pdf_text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run(args)
    print(f"{summary['rows']} files, {summary['errors']} errors, {summary['seconds']:.1f} s -> {args.dst}")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
