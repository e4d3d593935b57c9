"""Write LMDBs in the CRNN layout; the map grows as needed instead of reserving a terabyte up front."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lmdb
import numpy as np

from crnn_ocr.datasets.sources import SIZES_KEY, header_size, pack_sizes, release_env, shared_env
from crnn_ocr.errors import DatasetError
from crnn_ocr.files import check_replaceable, discard, staging_path, swap_in

LMDB_FILES = frozenset({"data.mdb", "lock.mdb"})


def is_our_lmdb(path: Path) -> bool:
    """A folder holding only an LMDB's files whose database carries the key this project's writer adds."""
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if "data.mdb" not in names or not names <= LMDB_FILES:
        return False
    try:
        with shared_env(path).begin() as txn:  # an LMDB may be opened once per process: share the readers' one
            return txn.get(SIZES_KEY) is not None and txn.get(b"num-samples") is not None
    except lmdb.Error:
        return False


class LmdbWriter:
    """Append (image bytes, label) pairs; keys image-%09d / label-%09d from 1, num-samples kept current.

    The LMDB is written under a temporary name beside `path` and moved there by `close()`; leaving the
    `with` block by an exception (or calling `abort()`) removes it, so a failure never leaves a partial
    output. `overwrite` replaces only an LMDB this project wrote, and never one of the `protected` paths
    (the inputs being read).

    >>> # with LmdbWriter("out.lmdb") as w: w.add(png_bytes, "hello")
    """

    def __init__(self, path: str | Path, overwrite: bool = False, commit_every: int = 1000,
                 initial_map_size: int = 64 << 20, protected: Iterable[str | Path] = ()):
        self.path = Path(path)
        check_replaceable(self.path, overwrite, is_our_lmdb, "an LMDB", protected)
        self.staged = staging_path(self.path)
        discard(self.staged)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.staged.mkdir()
        self.env = lmdb.open(str(self.staged), map_size=initial_map_size, subdir=True, meminit=False, map_async=True)
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
            except lmdb.Error as e:  # disk full, permissions: the staged output is dropped by the caller
                raise DatasetError(f"{self.path}: cannot write the LMDB ({e})") from e

    def close(self) -> None:
        """Finish the LMDB and move it to `path` (replacing the old output only now)."""
        if self.env is None:
            return
        try:
            self.flush()
            self._put_all([(SIZES_KEY, pack_sizes(np.array(self.sizes, dtype=np.int64).reshape(-1, 2)))])
            self.env.sync()
        except BaseException:
            self.abort()
            raise
        self.env.close()
        self.env = None
        release_env(self.path)  # a reader cached for this path would keep serving the old data
        swap_in(self.staged, self.path)

    def abort(self) -> None:
        """Drop what was written; an existing output at `path` stays as it was."""
        if self.env is not None:
            self.env.close()
            self.env = None
        discard(self.staged)

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
