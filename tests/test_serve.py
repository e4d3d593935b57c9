"""`ocr serve`: the HTTP API against a real uvicorn server on a free localhost port, its limits and errors, the
command itself with several workers, and the web page in a real headless chromium.

Needs the serve extra (`pip install -e '.[serve]'`); the page test also Debian's chromium and chromedriver
(`apt-get install chromium chromium-driver`). Each skips with its reason where they are missing.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FONT = REPO / "data" / "fonts" / "DejaVuSans.ttf"
MISSING = [m for m in ("fastapi", "uvicorn", "python_multipart", "httpx") if importlib.util.find_spec(m) is None]
needs_serve = pytest.mark.skipif(bool(MISSING), reason=f"the serve extra is not installed (no {', '.join(MISSING)}): "
                                                       "pip install -e '.[serve]'")
LIMITS = dict(max_upload_bytes=64 << 10, max_pixels=4_000_000, max_pages=3)  # small, so the tests stay small
WORDS = ["Station", "Coffee", "Hello", "market", "garden", "window", "Monday", "Friday", "Library", "Museum",
         "Ticket", "Parking"]


def render(word: str, fmt: str = "PNG", size: int = 40) -> bytes:
    """A word in black on white, in the bundled DejaVu Sans."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), size)
    image = Image.new("RGB", (60 + size * 7 * len(word) // 10, size * 9 // 5), "white")
    ImageDraw.Draw(image).text((24, size * 3 // 10), word, font=font, fill="black")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def pdf_of(words: list[str]) -> bytes:
    """A PDF with one rendered word per page (images only: no text layer)."""
    from PIL import Image

    pages = [Image.open(io.BytesIO(render(w))).convert("L") for w in words]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    return out.getvalue()


class Server:
    """A real uvicorn server for `app` in a thread of this process, on a free localhost port."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class Gate:
    """An engine whose readings wait for `open` (the real engine reads afterwards): a busy worker, on demand."""

    def __init__(self, engine):
        self.engine = engine
        self.entered, self.open = threading.Event(), threading.Event()

    def read(self, *args, **kwargs):
        self.entered.set()
        assert self.open.wait(30), "the test never opened the gate"
        return self.engine.read(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.engine, name)


@pytest.fixture(scope="module")
def engine():
    from crnn_ocr.serve import ServeConfig
    from crnn_ocr.serve.engine import Engine

    return Engine.load(ServeConfig(threads=1, **LIMITS))


def start(engine, **config):
    from crnn_ocr.serve import ServeConfig, create_app

    return Server(create_app(ServeConfig(threads=1, **{**LIMITS, **config}), engine=engine))


@pytest.fixture(scope="module")
def server(engine):
    if MISSING:
        pytest.skip(f"the serve extra is not installed (no {', '.join(MISSING)})")
    with start(engine, queue=32, timeout=60) as running:
        yield running


@pytest.fixture(scope="module")
def client():
    import httpx

    with httpx.Client(timeout=60) as http:
        yield http


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"], body
    for word in words:
        assert word in body["error"], (word, body)
    return body


def cli_json(path: Path, *args: str) -> list[dict]:
    """What `ocr recognize PATH --json` prints: one record per image or PDF page."""
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    result = CliRunner().invoke(main, ["recognize", str(path), "--json", "--threads", "1", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# -- the API -----------------------------------------------------------------------------------------------------


@needs_serve
def test_healthz_says_the_models_are_loaded(server, client):
    import crnn_ocr

    response = client.get(f"{server.url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == crnn_ocr.__version__
    assert body["model"].endswith(".onnx") and body["pid"] == os.getpid() and body["queue"] == 32
    assert response.headers["x-content-type-options"] == "nosniff"


@needs_serve
def test_a_word_reads_and_the_json_is_what_ocr_recognize_json_prints(server, client, tmp_path):
    import crnn_ocr

    image = render("Station")
    path = tmp_path / "word.png"
    path.write_bytes(image)
    response = client.post(f"{server.url}/v1/read", files={"file": ("word.png", image, "image/png")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "ocr;dur=" in response.headers["server-timing"]
    record = response.json()
    assert record["text"] == "Station" and record["path"] == "word.png"
    assert record["lines"][0]["words"][0]["text"] == "Station" and len(record["lines"][0]["words"][0]["quad"]) == 4
    (expected,) = cli_json(path)
    assert record == {**expected, "path": "word.png"}
    # the library's Document holds the same page (the CLI record adds its name and the crop's characters)
    document = crnn_ocr.load(threads=1).read(image)
    page = {k: v for k, v in record.items() if k not in ("path", "characters")}
    assert page == document.to_dict()["pages"][0]


@needs_serve
def test_a_page_as_the_raw_body_matches_the_cli_too(server, client, tmp_path):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 36)
    image = Image.new("L", (900, 420), 255)
    for i, line in enumerate(["Opening hours today", "Monday to Friday", "Coffee and tea"]):
        ImageDraw.Draw(image).text((40, 40 + 120 * i), line, font=font, fill=0)
    path = tmp_path / "page.png"
    image.save(path)
    response = client.post(f"{server.url}/v1/read", content=path.read_bytes(), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["layout"] == "page" and record["text"].splitlines() == ["Opening hours today", "Monday to Friday",
                                                                          "Coffee and tea"]
    (expected,) = cli_json(path)
    assert record == {**expected, "path": "-"}  # a raw body is named as stdin is
    text = client.post(f"{server.url}/v1/read?format=text", content=path.read_bytes(),
                       headers={"content-type": "image/png"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text == record["text"] + "\n"


@needs_serve
def test_other_formats_are_the_cli_formats(server, client, tmp_path):
    image = render("Coffee")
    path = tmp_path / "coffee.png"
    path.write_bytes(image)
    url = f"{server.url}/v1/read"
    jsonl = client.post(url, params={"format": "jsonl"}, files={"file": ("coffee.png", image)})
    assert jsonl.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in jsonl.text.splitlines()] == [{**r, "path": "coffee.png"} for r in cli_json(path)]
    hocr = client.post(url, data={"format": "hocr"}, files={"file": ("coffee.png", image)})  # options as form fields
    assert hocr.status_code == 200 and "ocrx_word" in hocr.text and "Coffee" in hocr.text
    alto = client.post(url, params={"format": "alto"}, files={"file": ("coffee.png", image)})
    assert alto.status_code == 200 and "<alto" in alto.text and 'CONTENT="Coffee"' in alto.text
    tsv = client.post(url, params={"format": "tsv"}, files={"file": ("coffee.png", image)})
    assert tsv.text.splitlines()[0].startswith("level\tpage_num") and tsv.text.rstrip().endswith("Coffee")


@needs_serve
def test_a_pdf_reads_page_by_page_as_the_cli_does(server, client, tmp_path):
    data = pdf_of(["Station", "Coffee"])
    path = tmp_path / "two.pdf"
    path.write_bytes(data)
    response = client.post(f"{server.url}/v1/read", files={"file": ("two.pdf", data, "application/pdf")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["path"] == "two.pdf" and body["text"] == "Station\fCoffee"
    assert [p["page"] for p in body["pages"]] == [1, 2] and "errors" not in body
    assert body["pages"] == [{**r, "path": "two.pdf"} for r in cli_json(path)]
    second = client.post(f"{server.url}/v1/read", params={"pages": "2"}, content=data,
                         headers={"content-type": "application/pdf"})
    assert second.status_code == 200 and [p["text"] for p in second.json()["pages"]] == ["Coffee"]


@needs_serve
def test_too_many_pdf_pages_is_413_unless_fewer_are_asked_for(server, client):
    data = pdf_of(["Station", "Coffee", "Hello", "market"])
    url = f"{server.url}/v1/read"
    assert_error(client.post(url, files={"file": ("four.pdf", data)}), 413, "4 to read", "limit 3")
    fewer = client.post(url, params={"pages": "2-3"}, files={"file": ("four.pdf", data)})
    assert fewer.status_code == 200 and [p["page"] for p in fewer.json()["pages"]] == [2, 3]
    assert_error(client.post(url, params={"pages": "9"}, files={"file": ("four.pdf", data)}), 400, "4 pages")


@needs_serve
def test_corrupt_files_are_400(server, client):
    url = f"{server.url}/v1/read"
    png = render("Station")
    assert_error(client.post(url, files={"file": ("cut.png", png[: len(png) // 2], "image/png")}), 400, "cut.png")
    assert_error(client.post(url, content=b"not an image at all", headers={"content-type": "image/jpeg"}), 400,
                 "not an image")
    assert_error(client.post(url, files={"file": ("bad.pdf", b"%PDF-1.4 nothing else", "application/pdf")}), 400,
                 "bad.pdf", "PDF")
    assert_error(client.post(url, content=b"", headers={"content-type": "image/png"}), 400, "empty")
    assert_error(client.post(url, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}),
                 400, "multipart")
    assert_error(client.post(url, files={"image": ("w.png", png)}), 400, "field `file`")


@needs_serve
def test_an_upload_past_the_byte_limit_is_413(server, client):
    url = f"{server.url}/v1/read"
    big = os.urandom(100 << 10)
    assert_error(client.post(url, content=big, headers={"content-type": "image/png"}), 413, "upload too large")
    assert_error(client.post(url, files={"file": ("big.png", big, "image/png")}), 413, "upload too large")

    def chunks():  # no Content-Length: the streamed read stops at the cap
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    response = client.post(url, content=chunks(), headers={"content-type": "image/png"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "more than 65536 bytes")


@needs_serve
def test_an_image_of_too_many_pixels_is_413_from_its_header(server, client):
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (2500, 2000), 255).save(out, "PNG")  # 5 MP in a few KB
    assert len(out.getvalue()) < LIMITS["max_upload_bytes"]
    assert_error(client.post(f"{server.url}/v1/read", files={"file": ("wide.png", out.getvalue())}), 413,
                 "2500x2000", "limit 4000000")


@needs_serve
def test_wrong_content_types_are_415(server, client):
    url = f"{server.url}/v1/read"
    assert_error(client.post(url, content=b"hello", headers={"content-type": "text/plain"}), 415, "text/plain")
    assert_error(client.post(url, content=render("Station")), 415, "none")  # no Content-Type at all
    assert_error(client.post(url, files={"file": ("notes.txt", b"hello", "text/plain")}), 415, "text/plain")


@needs_serve
def test_bad_options_unknown_routes_and_methods_are_json_errors(server, client):
    url = f"{server.url}/v1/read"
    image = render("Station")
    for params, words in [({"layout": "diagonal"}, ("layout", "page")), ({"dictionary": "/etc/passwd"}, ("dictionary",)),
                          ({"format": "pdf"}, ("format",)), ({"dpi": "5"}, ("dpi",)), ({"pages": "3-1"}, ("page",)),
                          ({"colour": "red"}, ("unknown parameter",)), ({"beam_width": "0"}, ("beam_width",))]:
        assert_error(client.post(url, params=params, files={"file": ("w.png", image)}), 400, *words)
    assert_error(client.get(f"{server.url}/nowhere"), 404)
    assert_error(client.get(url), 405)


@needs_serve
def test_request_options_change_the_reading(server, client):
    """dictionary=none gives the network's raw reading, a shipped language its correction, per request."""
    url = f"{server.url}/v1/read"
    image = render("Station")
    raw = client.post(url, params={"dictionary": "none", "layout": "word", "format": "text"},
                      files={"file": ("w.png", image)})
    assert raw.status_code == 200 and raw.text == "Station\n"
    beam = client.post(url, params={"decoder": "beam", "beam_width": "5", "dictionary": "de"},
                       files={"file": ("w.png", image)})
    assert beam.status_code == 200 and beam.json()["layout"] == "line"
    word = client.post(url, params={"layout": "word"}, files={"file": ("w.png", image)})
    assert word.json()["layout"] == "word"


@needs_serve
def test_concurrent_requests_are_all_answered(server, client):
    import httpx

    def post(word: str):
        with httpx.Client(timeout=60) as own:
            return word, own.post(f"{server.url}/v1/read", files={"file": (f"{word}.png", render(word))})

    with ThreadPoolExecutor(len(WORDS)) as pool:
        answers = list(pool.map(post, WORDS))
    assert [(w, r.status_code) for w, r in answers] == [(w, 200) for w in WORDS]
    assert [r.json()["text"] for _, r in answers] == WORDS
    assert client.get(f"{server.url}/healthz").json()["in_flight"] == 0


@needs_serve
def test_a_full_worker_answers_503_with_retry_after(engine, client):
    import httpx

    gate = Gate(engine)
    with start(gate, queue=1, timeout=60) as running, ThreadPoolExecutor(1) as pool:
        url = f"{running.url}/v1/read"
        first = pool.submit(lambda: httpx.post(url, files={"file": ("a.png", render("Hello"))}, timeout=60))
        assert gate.entered.wait(30)
        busy = client.post(url, files={"file": ("b.png", render("Coffee"))})
        assert_error(busy, 503, "busy")
        assert int(busy.headers["retry-after"]) >= 1
        health = client.get(f"{running.url}/healthz").json()  # the event loop still answers while it reads
        assert health["in_flight"] == 1 and health["queue"] == 1
        gate.open.set()
        assert first.result(30).status_code == 200 and first.result().json()["text"] == "Hello"
        after = client.post(url, files={"file": ("b.png", render("Coffee"))})
        assert after.status_code == 200 and after.json()["text"] == "Coffee"


@needs_serve
def test_a_timeout_is_504_and_the_slot_stays_taken_until_the_reading_ends(engine, client):
    gate = Gate(engine)
    try:
        with start(gate, queue=1, timeout=0.5) as running:
            url = f"{running.url}/v1/read"
            began = time.monotonic()
            assert_error(client.post(url, files={"file": ("a.png", render("Hello"))}), 504, "0.5 s")
            assert time.monotonic() - began < 10
            # the reading still runs in its thread: the bound of one holds, the next request is refused
            assert_error(client.post(url, files={"file": ("b.png", render("Coffee"))}), 503, "busy")
            gate.open.set()
            deadline = time.monotonic() + 30
            while client.get(f"{running.url}/healthz").json()["in_flight"]:
                assert time.monotonic() < deadline, "the slot was never given back"
                time.sleep(0.05)
            after = client.post(url, files={"file": ("b.png", render("Coffee"))})
            assert after.status_code == 200 and after.json()["text"] == "Coffee"
    finally:
        gate.open.set()


@needs_serve
def test_an_internal_error_is_json_without_a_traceback(engine, client):
    class Broken:
        def __getattr__(self, name):
            return getattr(engine, name)

        def read(self, *args, **kwargs):
            raise RuntimeError("secret detail\nTraceback (most recent call last):")

    with start(Broken(), queue=2) as running:
        response = client.post(f"{running.url}/v1/read", files={"file": ("a.png", render("Hello"))})
        body = assert_error(response, 500, "internal error")
        assert "secret" not in response.text
        assert body == {"error": "internal error (logged by the server)"}
        assert client.get(f"{running.url}/healthz").json()["in_flight"] == 0


@needs_serve
def test_the_page_and_its_files_are_served_and_load_nothing_from_elsewhere(server, client):
    page = client.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css", "favicon.svg"):
        response = client.get(f"{server.url}/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].split("/")[0] in ("text", "image")
        assert f'static/{name}"' in page.text and len(response.text) > 100
        text = response.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a fetch
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "http" not in page.text.replace("http://www.w3.org/2000/svg", "").replace("http-equiv", "")
    assert_error(client.get(f"{server.url}/static/../app.py"), 404)


# -- the command -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_serve
def test_ocr_serve_with_two_workers_loads_the_models_in_each_and_reads(client):
    port = free_port()
    command = [sys.executable, str(REPO / "cli.py"), "serve", "--port", str(port), "--workers", "2", "--threads", "1",
               "--queue", "4", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.1:{port}"
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "ocr serve did not become healthy"
            try:
                health = client.get(f"{url}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except Exception:  # noqa: BLE001  - not listening yet
                time.sleep(0.2)
        assert health.json()["queue"] == 4 and health.json()["pid"] != process.pid  # a worker process answers
        response = client.post(f"{url}/v1/read", files={"file": ("w.png", render("Museum"))})
        assert response.status_code == 200 and response.json()["text"] == "Museum"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@needs_serve
def test_ocr_serve_refuses_a_port_in_use_in_one_line():
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(main, ["serve", "--port", str(taken.getsockname()[1]), "--threads", "1"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: cannot listen on 127.0.0.1:") and len(result.stderr.splitlines()) == 1


BLOCKED = r"""
import sys
for blocked in ("fastapi", "uvicorn", "starlette", "python_multipart"):
    sys.modules[blocked] = None
import crnn_ocr.serve  # the package itself needs no web framework
from click.testing import CliRunner
from crnn_ocr.cli import main
result = CliRunner().invoke(main, ["serve", "--port", "8765"])
print(result.exit_code)
print(result.stderr, end="")
"""


def test_ocr_serve_without_the_extra_names_it_in_one_line():
    run = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    code, *lines = run.stdout.splitlines()
    assert code == "2" and len(lines) == 1, run.stdout
    assert lines[0].startswith("error: `") and "pip install 'crnn_ocr[serve]'" in lines[0], lines


def test_the_serve_package_imports_without_torch():
    script = "import sys; sys.modules['torch'] = None; import crnn_ocr.serve, crnn_ocr.serve.engine, crnn_ocr.serve.upload"
    if not MISSING:
        script += ", crnn_ocr.serve.app"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


# -- the web page in a real browser ------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    if MISSING:
        return f"the serve extra is not installed (no {', '.join(MISSING)})"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed: pip install -e '.[serve]'"
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return f"no {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver"
    return None


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_the_web_page_draws_the_boxes_and_shows_the_text(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = tmp_path / "ticket.png"
    image.write_bytes(render("Ticket", size=48))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=subprocess.DEVNULL), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{server.url}/")
        assert "crnn_ocr" in driver.title
        driver.find_element(By.ID, "file").send_keys(str(image))
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_element(By.ID, "text").text.strip() or d.find_element(By.ID, "error").text)
        assert driver.find_element(By.ID, "error").text == ""
        assert driver.find_element(By.ID, "text").text.strip() == "Ticket"
        boxes = driver.find_elements(By.CSS_SELECTOR, "#overlay polygon.box")
        assert len(boxes) == 1 and boxes[0].get_attribute("data-text") == "Ticket"
        assert boxes[0].size["width"] > 20 and boxes[0].size["height"] > 10  # drawn over the image, not collapsed
        image_box = driver.find_element(By.ID, "image").rect
        box = boxes[0].rect
        assert image_box["x"] <= box["x"] and box["x"] + box["width"] <= image_box["x"] + image_box["width"] + 1
        logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not logs, logs  # no script error, nothing refused by the Content-Security-Policy
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
