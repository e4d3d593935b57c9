"""Write LMDBs in the CRNN layout; the map grows as needed instead of reserving a terabyte up front."""

from __future__ import annotations

import shutil
from pathlib import Path

import lmdb
import numpy as np

from crnn_ocr.datasets.sources import SIZES_KEY, header_size, pack_sizes, release_env
from crnn_ocr.errors import DatasetError


class LmdbWriter:
    """Append (image bytes, label) pairs; keys image-%09d / label-%09d from 1, num-samples kept current.

    >>> # with LmdbWriter("out.lmdb") as w: w.add(png_bytes, "hello")
    """

    def __init__(self, path: str | Path, overwrite: bool = False, commit_every: int = 1000,
                 initial_map_size: int = 64 << 20):
        self.path = Path(path)
        release_env(self.path)  # a reader cached for this path would keep serving the old data
        if self.path.exists():
            if not overwrite:
                raise DatasetError(f"{self.path}: already exists (use overwrite)")
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.path.mkdir(parents=True)
        self.env = lmdb.open(str(self.path), map_size=initial_map_size, subdir=True, meminit=False, map_async=True)
        self.count = 0
        self.commit_every = commit_every
        self.pending: list[tuple[bytes, bytes]] = []
        self.sizes: list[tuple[int, int]] = []

    def add(self, image: bytes, label: str, size: tuple[int, int] | None = None) -> None:
        self.count += 1
        self.pending.append((f"image-{self.count:09d}".encode(), image))
        self.pending.append((f"label-{self.count:09d}".encode(), label.encode("utf-8")))
        self.sizes.append(size or header_size(image))
        if len(self.pending) >= 2 * self.commit_every:
            self.flush()

    def flush(self) -> None:
        self.pending.append((b"num-samples", str(self.count).encode("ascii")))
        self._put_all(self.pending)
        self.pending = []

    def _put_all(self, items: list[tuple[bytes, bytes]]) -> None:
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in items:
                        txn.put(key, value)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def close(self) -> None:
        if self.env is None:
            return
        self.flush()
        self._put_all([(SIZES_KEY, pack_sizes(np.array(self.sizes, dtype=np.int64).reshape(-1, 2)))])
        self.env.sync()
        self.env.close()
        self.env = None
        release_env(self.path)

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
