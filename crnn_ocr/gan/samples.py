"""Sample grids: rows of uint8 crops side by side (render / generated / real), written as PNG to look at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

GAP = 4
BACKGROUND = 255
CELL_FILL = 200


def _rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def make_grid(rows: Sequence[Sequence[np.ndarray]], header: Sequence[str] | None = None, scale: int = 1,
              max_cell_width: int = 320) -> np.ndarray:
    """uint8 (H, W, 3) image: one row per item, one column per kind, each cell left-aligned on light gray.

    >>> make_grid([[np.zeros((32, 40), np.uint8), np.zeros((32, 50), np.uint8)]]).shape
    (40, 102, 3)
    """
    if not rows:
        raise ValueError("make_grid needs at least one row")
    columns = max(len(r) for r in rows)
    cells = [[_rgb(im[:, :max_cell_width]) for im in r] for r in rows]
    col_w = [max((r[c].shape[1] for r in cells if c < len(r)), default=16) for c in range(columns)]
    row_h = [max(im.shape[0] for im in r) for r in cells]
    head_h = 16 if header else 0
    height = head_h + sum(row_h) + GAP * (len(rows) + 1)
    width = sum(col_w) + GAP * (columns + 1)
    grid = np.full((height, width, 3), BACKGROUND, np.uint8)
    xs = np.cumsum([GAP] + [w + GAP for w in col_w])[:-1]
    if header:
        for c, text in enumerate(header[:columns]):
            cv2.putText(grid, text, (int(xs[c]), 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    y = head_h + GAP
    for r, row in enumerate(cells):
        for c, im in enumerate(row):
            x = int(xs[c])
            grid[y : y + row_h[r], x : x + col_w[c]] = CELL_FILL
            grid[y : y + im.shape[0], x : x + im.shape[1]] = im
        y += row_h[r] + GAP
    if scale > 1:
        grid = cv2.resize(grid, (width * scale, height * scale), interpolation=cv2.INTER_NEAREST)
    return grid


def save_grid(rows: Sequence[Sequence[np.ndarray]], path: str | Path, header: Sequence[str] | None = None,
              scale: int = 1) -> Path:
    """Write `make_grid(rows, header, scale)` as a PNG (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(rows, header, scale)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())
    return path
