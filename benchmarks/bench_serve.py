"""`ocr serve` under load, on localhost only: requests/s, latency, status counts and the server's memory.

Starts `ocr serve` on a free 127.0.0.1 port and sends raw-body uploads from client threads (stdlib http.client,
keep-alive, one connection per thread):

1. word crops (../shared/eval/iiit5k_test, else words rendered here) and receipt pages
   (../shared/eval/sroie_pages, skipped without it) at concurrency 1, 4 and 16: requests/s, p50/p99 latency,
   counts of 200/413/503, dropped (no answer) and hung (no answer within --client-timeout) requests, and word
   accuracy of the answers (a check that what is served is the real reading);
2. limits: uploads over --max-upload-mb mixed in (413), and a second server with --queue 1 overloaded at
   concurrency 16 (503 with Retry-After);
3. memory: --rss-requests word crops (10,000 by default) at concurrency 4, the resident memory of the server's
   processes sampled all along.

Every phase is bounded in requests and seconds. Writes results/serve.md with the machine, the load on it and the
command.

    python benchmarks/bench_serve.py                                   # the full run (several minutes)
    python benchmarks/bench_serve.py --word-requests 300 --page-requests 10 --rss-requests 1000   # a quick look
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FONT = REPO / "data" / "fonts" / "DejaVuSans.ttf"


# -- the server ------------------------------------------------------------------------------------------------


class ServeProcess:
    """`ocr serve` in a subprocess on a free localhost port; stopped with SIGINT (then SIGKILL) on exit."""

    def __init__(self, *flags: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [sys.executable, str(REPO / "cli.py"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                        "--log-level", "warning", *flags]

    def __enter__(self) -> ServeProcess:
        self.process = subprocess.Popen(self.command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"ocr serve exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                status, _, _ = request("127.0.0.1", self.port, "GET", "/healthz", None, None, 2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise SystemExit("ocr serve did not become healthy in 180 s")

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def rss_mb(self) -> float:
        """Resident memory of the server and all its worker processes, in MB."""
        total, todo = 0, [self.process.pid]
        while todo:
            pid = todo.pop()
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return total / 1024


def request(host, port, method, path, body, content_type, timeout):
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type} if content_type else {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# -- the load --------------------------------------------------------------------------------------------------


def run_load(port: int, jobs: list[tuple[bytes, str, str | None]], concurrency: int, seconds: float,
             client_timeout: float, on_answer=None) -> dict:
    """Send `jobs` (body, content type, expected text or None) from `concurrency` threads until done or `seconds`
    have passed; every answer is classified by status, or as dropped (connection failed) or hung (timed out)."""
    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    results: list[tuple[object, float, bool | None]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=client_timeout)
        while time.monotonic() < deadline:
            try:
                body, content_type, expected = todo.get_nowait()
            except queue.Empty:
                break
            began = time.perf_counter()
            correct = None
            try:
                connection.request("POST", "/v1/read", body=body, headers={"Content-Type": content_type})
                response = connection.getresponse()
                answer = response.read()
                status = response.status
                if status == 200 and expected is not None:
                    correct = json.loads(answer)["text"].lower() == expected.lower()
                if status == 503 and "retry-after" not in {k.lower() for k in response.headers}:
                    status = "503 without Retry-After"
                if response.will_close:
                    connection.close()
            except TimeoutError:
                status = "hung"
                connection.close()
            except (OSError, http.client.HTTPException):
                status = "dropped"
                connection.close()
            elapsed = time.perf_counter() - began
            with lock:
                results.append((status, elapsed, correct))
            if on_answer is not None:
                on_answer(len(results))
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + client_timeout + 30)
    wall = time.perf_counter() - began
    ok = sorted(e for s, e, _ in results if s == 200)
    counts: dict[str, int] = {}
    for status, _, _ in results:
        counts[str(status)] = counts.get(str(status), 0) + 1
    checked = [c for _, _, c in results if c is not None]
    return {"sent": len(results), "unsent": len(jobs) - len(results), "wall": wall, "rate": len(results) / wall,
            "p50": percentile(ok, 50), "p99": percentile(ok, 99), "counts": counts,
            "accuracy": 100 * sum(checked) / len(checked) if checked else None,
            "stuck_threads": sum(t.is_alive() for t in threads)}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


# -- the inputs ------------------------------------------------------------------------------------------------


def word_jobs(eval_dir: Path, count: int) -> tuple[list, str]:
    labels = eval_dir / "iiit5k_test" / "labels.tsv"
    if labels.is_file():
        rows = [line.split("\t") for line in labels.read_text(encoding="utf-8").splitlines() if "\t" in line]
        files = [(labels.parent / path, text) for path, text in rows]
        source = f"IIIT5K test crops ({len(files)} in ../shared/eval/iiit5k_test, cycled)"
    else:
        files = None
        source = "words rendered with DejaVu Sans (no ../shared/eval/iiit5k_test)"
    jobs = []
    if files:
        cache = {}
        for k in range(count):
            path, text = files[k % len(files)]
            if path not in cache:
                cache[path] = path.read_bytes()
            jobs.append((cache[path], "image/png" if path.suffix.lower() == ".png" else "image/jpeg", text))
        return jobs, source
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 40)
    words = ["Station", "Coffee", "Hello", "market", "garden", "window", "Monday", "Friday", "Library", "Museum"]
    rendered = {}
    for word in words:
        image = Image.new("RGB", (60 + 28 * len(word), 72), "white")
        ImageDraw.Draw(image).text((24, 12), word, font=font, fill="black")
        out = io.BytesIO()
        image.save(out, "PNG")
        rendered[word] = out.getvalue()
    return [(rendered[words[k % len(words)]], "image/png", words[k % len(words)]) for k in range(count)], source


def page_jobs(eval_dir: Path, count: int) -> tuple[list, str | None]:
    folder = eval_dir / "sroie_pages" / "images"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder.is_dir() else []
    if not files:
        return [], None
    data = [p.read_bytes() for p in files]
    return ([(data[k % len(data)], "image/jpeg", None) for k in range(count)],
            f"SROIE receipt scans ({len(files)} in ../shared/eval/sroie_pages, cycled)")


# -- the report ------------------------------------------------------------------------------------------------


def busy_processes() -> list[str]:
    """What else used the CPU when the run began (ps, top 4 by CPU, this run excluded)."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out.splitlines()[1:]:
        cpu, _, args = line.strip().partition(" ")
        if "bench_serve" in args or args.startswith("ps ") or float(cpu or 0) < 10:
            continue
        rows.append(f"{cpu}% `{args.strip()[:110]}`")
    return rows[:4]


def row(name: str, concurrency: int, r: dict) -> str:
    counts = r["counts"]
    other = {k: v for k, v in counts.items() if k not in ("200", "413", "503", "dropped", "hung")}
    ms = lambda v: f"{1000 * v:.0f}" if v is not None else "-"
    accuracy = f"{r['accuracy']:.1f}" if r["accuracy"] is not None else "-"
    return (f"| {name} | {concurrency} | {r['sent']} | {r['wall']:.1f} | {r['rate']:.1f} | {ms(r['p50'])} | "
            f"{ms(r['p99'])} | {counts.get('200', 0)} | {counts.get('413', 0)} | {counts.get('503', 0)} | "
            f"{counts.get('dropped', 0)} | {counts.get('hung', 0) + r['stuck_threads']} | "
            f"{', '.join(f'{k}: {v}' for k, v in other.items()) or '-'} | {accuracy} |")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import cpu_name, load_average
    from crnn_ocr.page.parallel import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"))
    parser.add_argument("--workers", type=int, default=usable_cores(), help="ocr serve --workers (default: usable cores)")
    parser.add_argument("--queue", type=int, default=16, help="ocr serve --queue for the throughput runs")
    parser.add_argument("--word-requests", type=int, default=2000, help="word crops sent per concurrency level")
    parser.add_argument("--page-requests", type=int, default=40, help="receipt pages sent per concurrency level")
    parser.add_argument("--rss-requests", type=int, default=10_000, help="word crops of the memory run")
    parser.add_argument("--phase-seconds", type=float, default=120, help="most seconds of one phase")
    parser.add_argument("--client-timeout", type=float, default=120, help="an answer later than this is hung")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve.md"))
    args = parser.parse_args(argv)
    eval_dir = Path(args.eval)
    command = f"python benchmarks/bench_serve.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    load_before, others = load_average(), busy_processes()
    words, word_source = word_jobs(eval_dir, max(args.word_requests, args.rss_requests))
    pages, page_source = page_jobs(eval_dir, args.page_requests)
    flags = ["--workers", str(args.workers), "--threads", "1", "--queue", str(args.queue), "--max-upload-mb", "4"]
    rows, rss = [], []
    started = time.perf_counter()
    with ServeProcess(*flags) as server:
        port = server.port
        warm = words[:20] + pages[: 2 * args.workers]  # every worker loads its lazy models (verifier) first
        run_load(port, warm, args.workers, args.phase_seconds, args.client_timeout)
        warmed = server.rss_mb()
        for concurrency in (1, 4, 16):
            result = run_load(port, words[: args.word_requests], concurrency, args.phase_seconds, args.client_timeout)
            rows.append(row("word crops", concurrency, result))
            print(rows[-1], flush=True)
        for concurrency in (1, 4, 16) if pages else ():
            result = run_load(port, pages, concurrency, args.phase_seconds, args.client_timeout)
            rows.append(row("receipt pages", concurrency, result))
            print(rows[-1], flush=True)
        oversize = os.urandom(4 * (1 << 20) + 1)
        mixed = [job if k % 10 else (oversize, "image/png", None) for k, job in enumerate(words[:500])]
        rows.append(row("word crops, 1 in 10 over 4 MiB", 16, run_load(port, mixed, 16, args.phase_seconds,
                                                                        args.client_timeout)))
        print(rows[-1], flush=True)
        step = max(1, args.rss_requests // 20)

        def sample(answered: int) -> None:
            if answered % step == 0:
                rss.append((answered, server.rss_mb()))

        rss.append((0, server.rss_mb()))
        memory = run_load(port, words[: args.rss_requests], 4, 10 * args.phase_seconds, args.client_timeout, sample)
        rss.append((memory["sent"], server.rss_mb()))
        rows.append(row("memory run: word crops", 4, memory))
        print(rows[-1], flush=True)
    with ServeProcess("--workers", "1", "--threads", "1", "--queue", "1") as small:
        overload = run_load(small.port, words[:400], 16, args.phase_seconds, args.client_timeout)
        rows.append(row("word crops, 1 worker with --queue 1", 16, overload))
        print(rows[-1], flush=True)
    total = time.perf_counter() - started
    first, last = rss[0][1], rss[-1][1]
    lines = [
        "# `ocr serve` under load (benchmarks/bench_serve.py)", "",
        f"Command: `{command}`", "",
        f"Machine: {cpu_name()}, `nproc` {os.cpu_count()} ({usable_cores()} usable); load average before: "
        f"{load_before}, after: {load_average()}; {total:.0f} s in all.",
        "Other processes using the CPU when it began: " + ("; ".join(others) if others else "none above 10%") + ".",
        "",
        f"Server: `ocr serve {' '.join(flags)}` on 127.0.0.1 (raw-body uploads, one keep-alive connection per client "
        "thread, clients in this process on the same machine). Word crops: "
        f"{word_source}. Receipt pages: {page_source or 'none (no ../shared/eval/sroie_pages)'}.",
        "",
        "| inputs | concurrency | requests | wall s | requests/s | p50 ms | p99 ms | 200 | 413 | 503 | dropped | hung "
        "| other | words read right % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows, "",
        "p50/p99: latency of the 200 answers, measured by the client (upload, queueing and reading). Dropped: the "
        "connection failed without an answer; hung: no answer within the client timeout "
        f"({args.client_timeout:g} s). Words read right: answers whose text equals the label, ignoring case (exact "
        "match: stricter than the IIIT5K protocol of the README's table, which also ignores punctuation; the library "
        "reads the same crops alike).",
        "",
        f"## Memory over {memory['sent']} word-crop requests",
        "",
        "Resident memory of the server and its worker processes (MB), sampled by the client as requests were "
        f"answered (after the warm-up, before the throughput runs above: {warmed:.0f} MB):",
        "",
        "| requests answered | " + " | ".join(str(n) for n, _ in rss) + " |",
        "| --- | " + " | ".join("---" for _ in rss) + " |",
        "| RSS MB | " + " | ".join(f"{mb:.0f}" for _, mb in rss) + " |",
        "",
        f"From the first sample of this run to the last: {last - first:+.0f} MB "
        f"(min {min(mb for _, mb in rss):.0f}, max {max(mb for _, mb in rss):.0f}).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
