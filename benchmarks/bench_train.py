"""Training throughput of every registered architecture on this machine (images/s, forward + CTC + backward +
AdamW step), batch 64 of 32 x W grayscale, random data. Writes benchmarks/results/train.md.

    python benchmarks/bench_train.py --threads 2 --widths 128 320
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import cpu_name  # noqa: E402  (benchmarks/machine.py)

from crnn_ocr.config import ModelConfig
from crnn_ocr.models import available, create_model


def throughput(arch: str, width: int, batch: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    model = create_model(ModelConfig(arch=arch), 182).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 32, width, device=device)
    targets = torch.randint(1, 182, (batch * 6,), device=device)
    lengths = torch.full((batch,), width // 4, dtype=torch.long)
    target_lengths = torch.full((batch,), 6, dtype=torch.long)
    for i in range(steps + 2):
        if i == 2:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        log_probs = model(x).log_softmax(2).permute(1, 0, 2)  # (B, T, K) -> (T, B, K)
        loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 320])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for arch in available():
        params = sum(p.numel() for p in create_model(ModelConfig(arch=arch), 182).parameters())
        rates = [throughput(arch, w, args.batch, args.steps, args.device) for w in args.widths]
        rows.append((arch, params, rates))
        print(arch, [f"{r:.1f}" for r in rates], flush=True)
    lines = [
        "# Training throughput per architecture",
        "",
        f"`python benchmarks/bench_train.py --threads {args.threads} --widths {' '.join(map(str, args.widths))}` on "
        f"{cpu_name()} ({args.device}, {args.threads} torch threads, torch {torch.__version__}), "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Batch {args.batch}, height 32, random data, {args.steps} "
        "timed steps after 2 warm-up steps; images per second (forward, CTC, backward, AdamW).",
        "",
        "| architecture | parameters | " + " | ".join(f"width {w}" for w in args.widths) + " |",
        "| --- | --- | " + " | ".join("---" for _ in args.widths) + " |",
    ]
    lines += [f"| {a} | {p / 1e6:.2f}M | " + " | ".join(f"{r:.0f}" for r in rates) + " |" for a, p, rates in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
