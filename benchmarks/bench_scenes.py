"""Whole images, every engine, one thread, one run: detection and end-to-end scores on the scene sets and receipts.

For every set (each folder of ../shared/eval/scenes with a labels.jsonl, and ../shared/eval/sroie_pages) and every
engine: detection precision / recall / hmean at IoU >= 0.5 (one to one; `ignore` regions count neither way),
end-to-end hmean (a hit also needs the text equal after lower-casing and keeping [0-9a-z]) and bag-of-words F1,
all from `crnn_ocr.detect.scoring.score_dataset` (the protocol lives in the package, not here), and CPU seconds per
image (`time.process_time()` around the engine's call on the decoded image; decoding excluded; one untimed warm-up
call per engine first). Boxes are scored at the set's level (MSRA-TD500: lines, no transcriptions; FUNSD: words;
SROIE pages: lines), each engine giving its words or its lines as said in the report.

Engines (--engines, comma-separated; default: all, ours_linefinder only when `ours` has a detector):
    ours              crnn_ocr.load(threads=1) with the shipped detector (weights/text_detector.onnx) or --detector
                      PATH; with --no-detector, or while no detector is shipped, the line finder
    ours_linefinder   crnn_ocr.load(threads=1, detector=False): the line-finder baseline
    ppocrv4           rapidocr-onnxruntime 1.4.4, PP-OCRv4 det + cls + rec (models inside the wheel)
    ppocrv6_small     rapidocr 3.10.0, PP-OCRv6 small det + rec and the v2.0 cls (models inside the wheel)
    tesseract_psm11   Tesseract 5 through tesserocr, English, --psm 11 (sparse text)
    tesseract_psm3    the same, --psm 3 (automatic page segmentation)

    .venv-bench/bin/python benchmarks/bench_scenes.py --limit 3 --pictures 1 --out /tmp/bench   # smoke run
    .venv-bench/bin/python benchmarks/bench_scenes.py                                            # everything

Speed at the issue's size: --speed N photos of ../shared/train/scenes (MSRA-TD500 and Street View training photos,
never eval images), each scaled to cover 1280x720 and centre-cropped to it, read by every engine at the line level;
CPU s per photo (mean and median) and peak RSS of the process after the engine ran them, in its own table.

Writes scenes.md (the command, the machine, versions, one table per set), scenes.json (everything, per image) and
scenes_boxes.png (every engine's line boxes on --pictures dev images of ../shared/train/scenes/msra_td500_train,
never eval images) into --out. An engine that cannot run here is reported as "not available: <reason>". Offline:
RapidOCR gets the model files of its wheel, and a download it would start instead stops that engine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread everywhere; before numpy / onnxruntime / tesseract start their pools

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from compare_engines import Unavailable, find_tessdata, machine, to_bgr, version_of  # noqa: E402

from crnn_ocr.detect.scoring import LABELS_FILE, default_level, read_labels, score_dataset  # noqa: E402
from crnn_ocr.evaluate import is_scene_folder, predictions_of  # noqa: E402
from crnn_ocr.image.io import read_image  # noqa: E402

EVAL = REPO.parent / "shared" / "eval"
DEV = REPO.parent / "shared" / "train" / "scenes" / "msra_td500_train"
SPEED_SETS = ("msra_td500_train", "svt_scenes_train")  # training photos, for timing only
SPEED_SIZE = (1280, 720)
OUT = REPO / "benchmarks" / "results"
ENGINES = ["ours", "ours_linefinder", "ppocrv4", "ppocrv6_small", "tesseract_psm11", "tesseract_psm3"]
TITLES = {"msra_td500_test": "MSRA-TD500 test", "funsd_test": "FUNSD test", "sroie_pages": "SROIE pages"}


# ------------------------------------------------------------------------------------------------- sets

def sroie_records(folder: Path) -> list[dict]:
    """sroie_pages' own layout ({"image", "lines": [{"box": 8 numbers, "text"}]}) as scoring records (lines)."""
    pages = [json.loads(s) for s in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines() if s.strip()]
    return [{"image": p["image"], "regions": [{"quad": [b["box"][i:i + 2] for i in range(0, 8, 2)], "text": b["text"],
                                               "level": "line", "ignore": False} for b in p["lines"]]} for p in pages]


def find_sets(eval_dir: Path) -> dict[str, tuple[Path, list[dict]]]:
    """name -> (folder, records) of every set present."""
    sets = {}
    for folder in sorted((eval_dir / "scenes").glob("*")):
        if is_scene_folder(folder):
            sets[folder.name] = (folder, read_labels(folder))
    if (eval_dir / "sroie_pages" / "labels.jsonl").is_file():
        sets["sroie_pages"] = (eval_dir / "sroie_pages", sroie_records(eval_dir / "sroie_pages"))
    return sets


def score(records: list[dict], predictions: dict[str, list], level: str) -> dict:
    """score_dataset on exactly these records (a --limit keeps the images read, as evaluate_scenes does)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / LABELS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return score_dataset(tmp, predictions, level=level)


# ---------------------------------------------------------------------------------------------- engines

def quad_of(box) -> list[list[float]]:
    """(x1, y1, x2, y2) -> four corners, clockwise from the top left."""
    x1, y1, x2, y2 = box
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def single_thread(sessions) -> None:
    threads = {s.get_session_options().intra_op_num_threads for s in sessions}
    if threads != {1}:
        raise Unavailable(f"could not limit onnxruntime to one thread (sessions have {sorted(threads)})")


class Ours:
    def __init__(self, detector: str | None):
        self.detector = detector  # a path, or None for the line finder
        self.label = f"crnn_ocr + detector ({Path(detector).name})" if detector else "crnn_ocr, line finder"
        self.how = {"word": "words of its lines (Document words)", "line": "its lines"}

    def load(self) -> None:
        import crnn_ocr

        if self.detector and not Path(self.detector).is_file():
            raise Unavailable(f"detector {self.detector} not found")
        self.reader = crnn_ocr.load(threads=1, detector=self.detector or False)

    def prepare(self, rgb):
        channels = 3 if self.reader.detector is not None else self.reader.recognizer.cfg.channels
        return rgb if channels == 3 else read_image(rgb, channels=1)  # what Reader.read would decode

    def __call__(self, image, level: str) -> list[dict]:
        return predictions_of(self.reader.read(image), level)

    def versions(self) -> dict:
        return {**version_of("crnn_ocr", "onnxruntime", "numpy"), "detector": str(self.detector or "none")}


class PPOCRv4:
    label = "PP-OCRv4 (rapidocr-onnxruntime)"
    how = {"word": "word boxes joined from its per-character boxes (return_word_box) at spaces; its Chinese "
                   "recogniser often drops spaces, which merges words", "line": "its lines"}
    MODELS = ("ch_PP-OCRv4_det_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx")

    def load(self) -> None:
        try:
            import rapidocr_onnxruntime
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise Unavailable(f"rapidocr-onnxruntime not installed here ({e}); run benchmarks/setup_engines.sh") from e
        models = Path(rapidocr_onnxruntime.__file__).resolve().parent / "models"
        missing = [m for m in self.MODELS if not (models / m).is_file()]
        if missing:
            raise Unavailable(f"models missing from the wheel: {', '.join(missing)} in {models}")
        self.ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)  # 1.4.4 reads only its wheel's models
        single_thread([self.ocr.text_det.infer.session, self.ocr.text_cls.infer.session,
                       self.ocr.text_rec.session.session])

    prepare = staticmethod(to_bgr)

    def __call__(self, bgr, level: str) -> list[dict]:
        result, _ = self.ocr(bgr, return_word_box=level == "word")
        out = []
        for box, text, _score, *words in result or []:
            if level == "line" or not words or len(words[0]) != len(words[1]):
                out.append({"quad": box, "text": text})
                continue
            run: list = []  # (char box, char) of the current word
            for char_box, char in [*zip(words[0], words[1]), (None, " ")]:
                if char.strip():
                    run.append((char_box, char))
                elif run:
                    first, last = run[0][0], run[-1][0]
                    out.append({"quad": [first[0], last[1], last[2], first[3]], "text": "".join(c for _, c in run)})
                    run = []
        return out

    def versions(self) -> dict:
        return {**version_of("rapidocr-onnxruntime", "onnxruntime", "opencv-python-headless"),
                "models": ", ".join(self.MODELS)}


class PPOCRv6Small:
    label = "PP-OCRv6 small (rapidocr)"
    how = {"word": "its word boxes (return_word_box)", "line": "its lines"}
    MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
              "Rec": "PP-OCRv6_rec_small.onnx"}

    def load(self) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
            from rapidocr.utils.download_file import DownloadFile
        except ImportError as e:
            raise Unavailable(f"rapidocr not installed here ({e}); run benchmarks/setup_engines.sh") from e
        models = Path(rapidocr.__file__).resolve().parent / "models"
        missing = [m for m in self.MODELS.values() if not (models / m).is_file()]
        if missing:  # rapidocr would download them: this benchmark stays offline
            raise Unavailable(f"models missing from the wheel (rapidocr would download them): {', '.join(missing)}")
        original = DownloadFile.run.__func__

        def offline(cls, params):
            if not Path(params.save_path).is_file():
                raise Unavailable(f"rapidocr wanted to download {params.file_url}")
            return original(cls, params)

        DownloadFile.run = classmethod(offline)
        params = {"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                  "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                  **{f"{task}.model_path": str(models / name) for task, name in self.MODELS.items()}}
        self.ocr = RapidOCR(params=params)
        single_thread([self.ocr._load_det_model().session.session, self.ocr._load_cls_model().session.session,
                       self.ocr._load_rec_model().session.session])

    prepare = staticmethod(to_bgr)

    def __call__(self, bgr, level: str) -> list[dict]:
        result = self.ocr(bgr, return_word_box=level == "word")
        if result.boxes is None or result.txts is None or not len(result.boxes):
            return []
        words = [w for line in result.word_results or () for w in line if w and w[2] is not None]
        if level == "word" and words:
            return [{"quad": box, "text": text} for text, _score, box in words]
        return [{"quad": box.tolist(), "text": text} for box, text in zip(result.boxes, result.txts)]

    def versions(self) -> dict:
        return {**version_of("rapidocr", "onnxruntime", "opencv-python-headless"),
                "models": ", ".join(self.MODELS.values())}


class Tesseract:
    how = {"word": "RIL.WORD boxes", "line": "RIL.TEXTLINE boxes and texts"}

    def __init__(self, psm: int):
        self.psm, self.label = psm, f"Tesseract 5 psm {psm}"

    def load(self) -> None:
        try:
            import tesserocr
        except ImportError as e:
            raise Unavailable(f"tesserocr not installed here ({e}); run benchmarks/setup_engines.sh, use .venv-bench") from e
        self.tesserocr, self.tessdata = tesserocr, find_tessdata(tesserocr)
        try:
            self.api = tesserocr.PyTessBaseAPI(path=self.tessdata, lang="eng", psm=self.psm)
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"Tesseract failed to initialise with {self.tessdata}eng.traineddata: {e}") from e
        self.api.SetVariable("debug_file", "/dev/null")  # no resolution warning per image
        self.version = tesserocr.tesseract_version().split("\n")[0].removeprefix("tesseract ").strip()

    def prepare(self, rgb):
        return rgb.tobytes(), rgb.shape[1], rgb.shape[0]  # colour, as it reads a file; no dpi: it estimates one

    def __call__(self, image, level: str) -> list[dict]:
        data, w, h = image
        self.api.SetImageBytes(data, w, h, 3, 3 * w)
        self.api.Recognize()
        ril = self.tesserocr.RIL.WORD if level == "word" else self.tesserocr.RIL.TEXTLINE
        it, out = self.api.GetIterator(), []
        for r in self.tesserocr.iterate_level(it, ril) if it is not None else []:
            text, box = (r.GetUTF8Text(ril) or "").strip(), r.BoundingBox(ril)
            if text and box:
                out.append({"quad": quad_of(box), "text": " ".join(text.split())})
        return out

    def versions(self) -> dict:
        return {**version_of("tesserocr"), "tesseract": self.version, "tessdata": self.tessdata + "eng.traineddata"}


def make_engine(key: str, detector: str | None):
    if key == "ours":
        return Ours(detector)
    if key == "ours_linefinder":
        return Ours(None)
    if key.startswith("tesseract_psm"):
        return Tesseract(int(key.removeprefix("tesseract_psm")))
    return {"ppocrv4": PPOCRv4, "ppocrv6_small": PPOCRv6Small}[key]()


# ------------------------------------------------------------------------------------------------- runs

def speed_photos(count: int) -> list:
    """`count` training photos (alternating between SPEED_SETS), each scaled to cover SPEED_SIZE and centre-cropped."""
    import cv2

    w, h = SPEED_SIZE
    lists = [[DEV.parent / name / r["image"] for r in read_labels(DEV.parent / name)]
             for name in SPEED_SETS if (DEV.parent / name / LABELS_FILE).is_file()]
    paths = [path for group in zip(*lists) for path in group][:count] if lists else []
    photos = []
    for path in paths:
        rgb = read_image(path, channels=3)
        scale = max(w / rgb.shape[1], h / rgb.shape[0])
        big = cv2.resize(rgb, (max(w, round(rgb.shape[1] * scale)), max(h, round(rgb.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
        photos.append(big[y:y + h, x:x + w].copy())
    return photos


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_engine(key: str, engine, sets: dict, dev: list[dict], photos: list | None = None) -> dict:
    """Load, warm up, read every image of every set and the dev images; scores per set."""
    r: dict = {"engine": key, "label": engine.label}
    start = time.perf_counter()
    try:
        engine.load()
        first = next(iter(sets.values()))
        engine(engine.prepare(read_image(first[0] / first[1][0]["image"], channels=3)), "line")  # untimed warm-up
    except Unavailable as e:
        return {**r, "status": "unavailable", "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - a load failure costs this engine only
        return {**r, "status": "unavailable", "reason": f"load failed: {type(e).__name__}: {e}"}
    r.update(status="ok", label=engine.label, load_s=time.perf_counter() - start, versions=engine.versions(),
             how=engine.how, sets={})
    for name, (folder, records, level) in sets.items():
        predictions, cpu, wall, failures = {}, [], [], {}
        for record in records:
            image = engine.prepare(read_image(folder / record["image"], channels=3))
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                found = engine(image, level)
            except Exception as e:  # noqa: BLE001 - an image the engine fails on: no boxes, counted
                found, failures[record["image"]] = [], f"{type(e).__name__}: {e}"
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            predictions[record["image"]] = [{"quad": [[round(float(x), 1), round(float(y), 1)] for x, y in q["quad"]],
                                             "text": q["text"]} for q in found]  # plain floats, a smaller json
        scores = score(records, predictions, level)
        r["sets"][name] = {"scores": scores, "cpu_s_per_image": statistics.fmean(cpu), "wall_s_per_image":
                           statistics.fmean(wall), "failures": failures, "cpu_s": cpu, "predictions": predictions}
        print(f"[{key}] {name}: {len(records)} images, H {scores['hmean']:.3f}, "
              f"{statistics.fmean(cpu):.2f} CPU s/image, {len(failures)} failures", file=sys.stderr, flush=True)
    if photos:
        cpu = []
        for photo in photos:
            image = engine.prepare(photo)
            c0 = time.process_time()
            try:
                engine(image, "line")
            except Exception:  # noqa: BLE001 - timed all the same
                pass
            cpu.append(time.process_time() - c0)
        r["speed"] = {"photos": len(photos), "cpu_s_mean": statistics.fmean(cpu), "cpu_s_median": statistics.median(cpu),
                      "peak_rss_mb": peak_rss_mb()}
        print(f"[{key}] {len(photos)} photos at {SPEED_SIZE[0]}x{SPEED_SIZE[1]}: {statistics.fmean(cpu):.3f} CPU s/photo",
              file=sys.stderr, flush=True)
    r["dev"] = {}
    for record in dev:
        try:
            r["dev"][record["image"]] = engine(engine.prepare(read_image(DEV / record["image"], channels=3)), "line")
        except Exception:  # noqa: BLE001 - a missing picture cell, nothing more
            r["dev"][record["image"]] = []
    return r


# ------------------------------------------------------------------------------------------------ report

def rate(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def write_markdown(path: Path, report: dict) -> str:
    m = report["machine"]
    lines = ["# Whole images: detection and end to end, every engine at one thread", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; {m['date']}; load "
             f"average {m['loadavg_start']} at the start, {m['loadavg_end']} at the end.", "",
             "Scoring: `crnn_ocr.detect.scoring.score_dataset`. P / R / H: detection precision, recall and hmean, "
             "one-to-one matches at polygon IoU >= 0.5, `ignore` regions counting neither way. e2e H: a hit also "
             "needs the text equal after lower-casing and keeping [0-9a-z]. BoW F1: bag of words, same normalisation. "
             "CPU s/image: `time.process_time()` around the engine's call on the decoded image (decoding excluded, "
             "one untimed warm-up call first), mean; OMP_NUM_THREADS=1, onnxruntime sessions at one intra-op thread."
             + (f" Only the first {report['limit']} images of each set." if report["limit"] else ""), ""]
    lines += [f"Note: {note}" for note in report["notes"]] + ([""] if report["notes"] else [])
    for name, s in report["sets"].items():
        lines += [f"## {TITLES.get(name, name)}", "",
                  f"`{s['folder']}`: {s['images']} images, {s['regions']} {s['level']} regions to find "
                  f"({s['ignored']} ignore); scored at the {s['level']} level.", "",
                  "| engine | P | R | H | e2e H | BoW F1 | CPU s/image |", "|---|---:|---:|---:|---:|---:|---:|"]
        skipped = set()
        for r in report["engines"]:
            if r["status"] != "ok":
                lines.append(f"| {r['label']} | not available: {r['reason']} | | | | | |")
                continue
            sc = r["sets"][name]["scores"]
            skipped.add(sc["e2e"].get("skipped"))
            lines.append(f"| {r['label']} | {rate(sc['precision'])} | {rate(sc['recall'])} | {rate(sc['hmean'])} | "
                         f"{rate(sc['e2e']['hmean'])} | {rate(sc['bow']['f1'])} | {r['sets'][name]['cpu_s_per_image']:.2f} |")
        lines += [""] + [f"- {note}" for note in s["notes"]]
        if s["regions"] and not s["transcribed"]:
            skipped.clear()  # said in the notes
        lines += [f"- e2e and BoW not scored for some engine: {why}" for why in sorted(skipped - {None})]
        lines.append("")
    speed = [r for r in report["engines"] if r.get("speed")]
    if speed:
        w, h = SPEED_SIZE
        lines += [f"## Speed on {w}x{h} photos", "",
                  f"{speed[0]['speed']['photos']} training photos of {' and '.join(SPEED_SETS)} (never eval images), "
                  f"each scaled to cover {w}x{h} and centre-cropped to it, read whole (lines) by each engine in the "
                  "same process as its scored sets, one thread. Peak RSS: the process's high-water mark after the "
                  "engine's last photo (it includes every engine run before it in this process).", "",
                  "| engine | CPU s/photo (mean) | median | peak RSS MB |", "|---|---:|---:|---:|"]
        lines += [f"| {r['label']} | {r['speed']['cpu_s_mean']:.3f} | {r['speed']['cpu_s_median']:.3f} | "
                  f"{r['speed']['peak_rss_mb']:.0f} |" for r in speed]
        lines.append("")
    lines += ["## How each engine's boxes were taken", ""]
    for r in report["engines"]:
        if r["status"] == "ok":
            lines.append(f"- {r['label']}: words: {r['how']['word']}; lines: {r['how']['line']}. "
                         + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))
        else:
            lines.append(f"- {r['label']}: not available: {r['reason']}")
    failures = [(r["label"], n, img, why) for r in report["engines"] if r["status"] == "ok"
                for n, s in r["sets"].items() for img, why in list(s["failures"].items())[:2]]
    lines += ["", "Images an engine failed on (no boxes, counted): "
              + ("; ".join(f"{lab}, {n} `{img}`: {why}" for lab, n, img, why in failures) if failures else "none") + "."]
    if report.get("picture"):
        lines += ["", f"Line boxes on {report['pictures']} dev images of `{DEV.name}` (training images, not scored; "
                  "green: annotation, grey: ignore, red: engine):", "", f"![boxes]({Path(report['picture']).name})"]
    elif report.get("picture_error"):
        lines += ["", f"Picture not drawn: {report['picture_error']}"]
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def draw_boxes(path: Path, dev: list[dict], engines: list[dict], width: int = 300) -> None:
    """One grid, rows dev images, columns the annotation then each engine; a quantised PNG under 1 MB."""
    from PIL import Image, ImageDraw

    ok = [r for r in engines if r["status"] == "ok"]
    columns = [("annotation", None)] + [(r["label"], r["dev"]) for r in ok]
    while True:
        cells = []
        for record in dev:
            base = Image.open(DEV / record["image"]).convert("RGB")
            scale = width / base.width
            base = base.resize((width, round(base.height * scale)))
            row = []
            for title, predictions in columns:
                cell = base.copy()
                draw = ImageDraw.Draw(cell)
                if predictions is None:
                    shapes = [(r["quad"], (160, 160, 160) if r.get("ignore") else (0, 200, 0)) for r in record["regions"]]
                else:
                    shapes = [(p["quad"], (230, 0, 0)) for p in predictions.get(record["image"], [])]
                for quad, colour in shapes:
                    draw.polygon([(x * scale, y * scale) for x, y in quad], outline=colour, width=2)
                draw.rectangle((0, 0, width, 12), fill=(255, 255, 255))
                draw.text((2, 0), title[:48], fill=(0, 0, 0))
                row.append(cell)
            cells.append(row)
        heights = [max(c.height for c in row) for row in cells]
        grid = Image.new("RGB", (width * len(columns), sum(heights)), (255, 255, 255))
        for i, row in enumerate(cells):
            for j, cell in enumerate(row):
                grid.paste(cell, (j * width, sum(heights[:i])))
        grid.quantize(colors=128).save(path, optimize=True)
        if path.stat().st_size < 1_000_000 or width <= 120:
            return
        width = int(width * 0.8)


# -------------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", help="comma-separated set names (default: all: the folders of scenes/ and sroie_pages)")
    p.add_argument("--engines", help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    p.add_argument("--limit", type=int, default=0, help="the first N images of each set (0: all)")
    p.add_argument("--out", default=str(OUT), help="folder for scenes.md / .json / _boxes.png")
    p.add_argument("--pictures", type=int, default=3, help="dev images to draw every engine's boxes on (0: none)")
    p.add_argument("--eval-dir", default=str(EVAL), help="the evaluation sets (default: ../shared/eval)")
    p.add_argument("--detector", help="our detector (.onnx); default: the shipped weights/text_detector.onnx")
    p.add_argument("--no-detector", action="store_true", help="`ours` without a detector (the line finder)")
    p.add_argument("--speed", type=int, default=40,
                   help="training photos at 1280x720 to time every engine on (0: none)")
    args = p.parse_args(argv)

    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    from crnn_ocr.defaults import find_detector

    detector = None if args.no_detector else (args.detector or find_detector())
    detector = str(Path(detector).resolve()) if detector else None
    engines = args.engines.split(",") if args.engines else [e for e in ENGINES if e != "ours_linefinder" or detector]
    unknown = [e for e in engines if e not in ENGINES]
    available = find_sets(Path(args.eval_dir))
    wanted = args.sets.split(",") if args.sets else list(available)
    absent = [s for s in wanted if s not in available]
    if unknown or absent:
        print(f"bench_scenes: unknown engine(s) {unknown} (choose from {ENGINES}) or set(s) {absent} not in "
              f"{args.eval_dir} (present: {list(available)})", file=sys.stderr)
        return 2
    sets = {}
    for name in wanted:
        folder, records = available[name]
        records = records[: args.limit] if args.limit else records
        sets[name] = (folder, records, default_level(records))
    dev = read_labels(DEV)[: args.pictures] if args.pictures and (DEV / LABELS_FILE).is_file() else []
    photos = speed_photos(args.speed) if args.speed else []

    argv_shown = list(argv if argv is not None else sys.argv[1:])
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    report = {"command": shlex.join([python, "benchmarks/bench_scenes.py", *argv_shown]), "machine": machine(),
              "limit": args.limit, "threads": 1, "pictures": len(dev), "sets": {}, "engines": [], "notes": []}
    if "ours" in engines and not detector:
        report["notes"].append("`ours` ran without a detector (" + ("--no-detector" if args.no_detector else
                               "none shipped in weights/, no --detector") + "): it is the line finder.")
    for name, (folder, records, level) in sets.items():
        regions = [r for rec in records for r in rec["regions"] if r["level"] == level]
        notes = []
        transcribed = sum(r["text"] is not None for r in regions)
        if not transcribed:
            notes.append(f"{TITLES.get(name, name)} has no transcriptions: e2e and BoW not scored.")
        if name == "msra_td500_test":
            notes.append("Chinese and English lines: Tesseract reads English only, the PaddleOCR models Chinese too; "
                         "detection scores count both.")
        if name == "sroie_pages":
            notes.append("Annotated lines are segments (a price apart from its item): engines that find whole rows "
                         "lose box matches. Transcripts upper-cased; scoring lower-cases both sides.")
        if level == "word":
            notes.append("Word level: each engine's words as listed under 'How each engine's boxes were taken'.")
        report["sets"][name] = {"folder": str(folder), "level": level, "images": len(records), "notes": notes,
                                "transcribed": transcribed,
                                "regions": sum(not r["ignore"] for r in regions), "ignored": sum(r["ignore"] for r in regions)}

    started = time.perf_counter()
    for key in engines:
        print(f"== {key}", file=sys.stderr, flush=True)
        r = run_engine(key, make_engine(key, detector), sets, dev, photos)
        if r["status"] != "ok":
            print(f"  not available: {r['reason']}", file=sys.stderr, flush=True)
        report["engines"].append(r)
    report["machine"]["loadavg_end"] = machine()["loadavg_start"]
    report["wall_s"] = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if dev:
        try:
            draw_boxes(out / "scenes_boxes.png", dev, report["engines"])
            report["picture"] = str(out / "scenes_boxes.png")
        except Exception as e:  # noqa: BLE001 - the tables still count
            report["picture_error"] = f"{type(e).__name__}: {e}"
    text = write_markdown(out / "scenes.md", report)
    (out / "scenes.json").write_text(json.dumps(report, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    print(text.split("## How each engine")[0])
    print(f"wrote {out / 'scenes.md'}, scenes.json" + (", scenes_boxes.png" if report.get("picture") else "")
          + f" in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
