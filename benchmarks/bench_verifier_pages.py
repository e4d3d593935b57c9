"""Line finding on ../shared/eval/sroie_pages with and without the text / non-text verifier as its filter stage.

    OMP_NUM_THREADS=1 python benchmarks/bench_verifier_pages.py                          # weights/*verifier*.pt
    OMP_NUM_THREADS=1 python benchmarks/bench_verifier_pages.py --verifier other.pt --limit 5

Scored as in bench_pages.py (its `match_count`: one-to-one matches at IoU >= 0.5 against the axis-aligned bounds
of the annotated quadrilaterals). The candidates are found once per page; the verifier then filters those same
candidates (`crnn_ocr.page.lines.apply_filter`, what `find_lines(text_filter=...)` does). The verifier was trained
on rendered data and ../shared/train crops only; its threshold was set on its own validation split, never on
these pages. The threshold sweep below is for information only: picking the shipped threshold from it would be
tuning on the evaluation set. Writes benchmarks/results/verifier_pages.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_pages import DEFAULT_DATA, load_pages, machine, match_count  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "verifier_pages.md"
SWEEP = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--verifier", help="Verifier file (default: weights/*verifier*.pt).")
    ap.add_argument("--limit", type=int, default=0, help="Only the first N pages.")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    data = Path(args.data)
    if not (data / "labels.jsonl").is_file():
        print(f"skipped: {data} is absent (expects labels.jsonl and images/)")
        return 0
    import torch

    torch.set_num_threads(1)
    from crnn_ocr.dbn.verifier import TextVerifier, default_verifier_path
    from crnn_ocr.image.io import read_image
    from crnn_ocr.image.preprocess import to_gray
    from crnn_ocr.page import crop_line, find_lines

    path = Path(args.verifier) if args.verifier else default_verifier_path()
    if path is None:
        print("no verifier: pass --verifier or train one with `ocr dbn train`")
        return 1
    verifier = TextVerifier.load(path)
    pages = load_pages(data, args.limit)
    totals = {"truth": 0, "found": 0, "matched": 0, "kept": 0, "kept_matched": 0}
    sweep = {t: {"kept": 0, "matched": 0} for t in SWEEP}
    per_page = []
    verify_cpu = 0.0
    for p in pages:
        image = read_image(data / p["image"])
        lines = find_lines(image)
        boxes = [ln.box for ln in lines]
        gray = to_gray(image)
        c = time.process_time()
        scores = verifier.scores([crop_line(gray, ln)[0] for ln in lines]) if lines else np.zeros(0)
        verify_cpu += time.process_time() - c
        kept = [b for b, s in zip(boxes, scores) if s >= verifier.threshold]
        m_all, m_kept = match_count(boxes, p["truth_boxes"]), match_count(kept, p["truth_boxes"])
        totals["truth"] += len(p["truth_boxes"])
        totals["found"] += len(boxes)
        totals["matched"] += m_all
        totals["kept"] += len(kept)
        totals["kept_matched"] += m_kept
        for t in SWEEP:
            k = [b for b, s in zip(boxes, scores) if s >= t]
            sweep[t]["kept"] += len(k)
            sweep[t]["matched"] += match_count(k, p["truth_boxes"])
        per_page.append((Path(p["image"]).name, len(p["truth_boxes"]), len(boxes), m_all, len(kept), m_kept))
        print(per_page[-1], flush=True)

    def pr(matched: int, found: int) -> tuple[float, float, float]:
        r, q = matched / max(1, totals["truth"]), matched / max(1, found)
        return r, q, 2 * r * q / max(r + q, 1e-9)

    r0, p0, f0 = pr(totals["matched"], totals["found"])
    r1, p1, f1 = pr(totals["kept_matched"], totals["kept"])
    rel = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    lines_md = [
        "# Line finding on sroie_pages with and without the text / non-text verifier", "",
        f"`python benchmarks/bench_verifier_pages.py {' '.join(sys.argv[1:])}`".replace(" `", "`"), "",
        f"{len(pages)} receipt scans from `{args.data}`, {totals['truth']} annotated lines; one-to-one box matches at "
        f"IoU >= 0.5 (bench_pages.py). Verifier: `{rel}` ({verifier.kind}, threshold {verifier.threshold:.3f}, "
        "set on its own validation split).", "",
        "| line finder | recall | precision | F1 | lines found | matched |", "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| without verifier | {r0:.3f} | {p0:.3f} | {f0:.3f} | {totals['found']} | {totals['matched']} |",
        f"| with verifier | {r1:.3f} | {p1:.3f} | {f1:.3f} | {totals['kept']} | {totals['kept_matched']} |", "",
        f"Verifier CPU time: {verify_cpu / max(1, len(pages)):.3f} s per page (crops + scoring).", "",
        "## Threshold sweep (information only; the shipped threshold was not chosen here)", "",
        "| threshold | recall | precision | F1 | kept |", "| ---: | ---: | ---: | ---: | ---: |"]
    for t in SWEEP:
        r, q, f = pr(sweep[t]["matched"], sweep[t]["kept"])
        lines_md.append(f"| {t:.2f} | {r:.3f} | {q:.3f} | {f:.3f} | {sweep[t]['kept']} |")
    lines_md += ["", "## Per page", "", "| page | truth | found | matched | kept | kept & matched |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines_md += [f"| {n} | {t} | {f} | {m} | {k} | {km} |" for n, t, f, m, k, km in per_page]
    lines_md += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine().items()] + [""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines_md), encoding="utf-8")
    print("\n".join(lines_md[6:10]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
