"""Labelled image sources on disk: LMDB (CRNN layout), folders with labels.tsv, and .gt.txt pairs.

A source gives, for index i (0-based), the encoded image bytes and the label. `open_source(path)` asks each
registered reader, in registration order, whether it recognises the path; several paths make one
`ConcatSource`. A new format is one class here or in its own module:

>>> # @register_reader("my-format")
>>> # class MySource(Source):
>>> #     @classmethod
>>> #     def detect(cls, path): return (path / "index.json").is_file()
>>> #     @classmethod
>>> #     def open(cls, path): ...
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import lmdb
import numpy as np
from PIL import Image

from crnn_ocr.errors import DatasetError
from crnn_ocr.image.io import IMAGE_SUFFIXES
from crnn_ocr.registry import Registry

SIZES_KEY = b"crnn_ocr-sizes"


class Source:
    """Base: a sequence of (image bytes, label) pairs.

    A reader registered with `register_reader` also has the classmethods `detect(path) -> bool` (does the path
    hold this format?) and `open(path) -> Source`.
    """

    name: str = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def image_bytes(self, i: int) -> bytes:
        raise NotImplementedError

    def label(self, i: int) -> str:
        raise NotImplementedError

    def __iter__(self) -> Iterator[tuple[bytes, str]]:
        for i in range(len(self)):
            yield self.image_bytes(i), self.label(i)

    def labels(self) -> list[str]:
        return [self.label(i) for i in range(len(self))]

    def paths(self) -> list[Path]:
        """The files and folders this source reads: an output must never replace or hold one of them."""
        return []

    def sample_name(self, i: int) -> str:
        """A name a person can find sample i by (an image path, or `lmdb-name:image-%09d`)."""
        return f"{self.name}[{i}]"

    def load(self, i: int, channels: int = 1) -> tuple[np.ndarray, str]:
        """Sample i decoded: (uint8 image with `channels` channels, label). Raises ImageError or DatasetError."""
        from crnn_ocr.image.io import read_image

        return read_image(self.image_bytes(i), channels=channels), self.label(i)

    def sizes(self) -> np.ndarray:
        """(N, 2) array of (width, height) read from image headers (no full decode)."""
        out = np.zeros((len(self), 2), dtype=np.int32)
        for i in range(len(self)):
            try:
                out[i] = header_size(self.image_bytes(i))
            except DatasetError:  # a missing entry: size unknown, like a corrupt one; reported when read
                pass
        return out


def header_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # noqa: BLE001  - a corrupt entry: size unknown, reported when decoded
        return (0, 0)


_ENVS: dict[str, tuple[int, lmdb.Environment]] = {}


def shared_env(path: Path) -> lmdb.Environment:
    """One read-only environment per LMDB and process (LMDB forbids opening one twice, or using one across fork)."""
    key = str(path.resolve())
    pid = os.getpid()
    cached = _ENVS.get(key)
    if cached is None or cached[0] != pid:
        if cached is not None:  # inherited through fork: unusable here, and lmdb >= 3 refuses a second open of the path
            cached[1].close()  # until this process's copy is closed (the parent's stays open)
        env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
        _check_complete(env, path)
        _ENVS[key] = (pid, env)
        return env
    return cached[1]


def _check_complete(env: lmdb.Environment, path: Path) -> None:
    """Refuse an LMDB whose data file is shorter than its own last page says (an interrupted copy): reading
    past the end of a memory-mapped file kills the process with SIGBUS, with no message."""
    pages_needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    data = path / "data.mdb" if path.is_dir() else path
    size = data.stat().st_size
    if size < pages_needed:
        env.close()
        raise DatasetError(f"{path}: truncated LMDB (data.mdb has {size} bytes, its pages need {pages_needed}); "
                           "copy it again")


def release_env(path: Path) -> None:
    cached = _ENVS.pop(str(path.resolve()), None)
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()


_READERS: Registry[type[Source]] = Registry("dataset reader", DatasetError)


def register_reader(name: str) -> Callable[[type[Source]], type[Source]]:
    """Class decorator: make `open_source` try this reader (after those registered before it)."""
    return _READERS.register(name)


def readers() -> list[str]:
    return list(_READERS)


@register_reader("lmdb")
class LmdbSource(Source):
    """An LMDB in the CRNN / deep-text-recognition-benchmark layout: num-samples, image-%09d, label-%09d (1-based).

    The environment is shared per process and reopened after a fork.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        if not (self.path / "data.mdb").is_file():
            raise DatasetError(f"{self.path}: not an LMDB folder (no data.mdb)")
        try:
            with shared_env(self.path).begin() as txn:
                raw = txn.get(b"num-samples")
                first = txn.get(b"image-000000001")
                sizes = txn.get(SIZES_KEY)
                entries = txn.stat()["entries"]
        except lmdb.Error as e:
            raise DatasetError(f"{self.path}: broken LMDB ({e})") from e
        if raw is None:
            raise DatasetError(f"{self.path}: LMDB lacks 'num-samples': not in the CRNN layout")
        try:
            self.n = int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError) as e:
            raise DatasetError(f"{self.path}: 'num-samples' is not a number ({raw[:20]!r})") from e
        if self.n < 0 or (self.n > 0 and first is None):
            raise DatasetError(f"{self.path}: LMDB says {self.n} samples but has no image-000000001")
        # A count far above what is stored would send every reader through millions of missing keys; a few
        # missing entries are reported per sample when read. Samples stored beyond the count are noted for
        # `ocr data inspect` (readers of this layout stop at num-samples).
        if self.n > 0 and entries < self.n and self._txn_get(f"image-{self.n:09d}".encode()) is None:
            raise DatasetError(f"{self.path}: LMDB says {self.n} samples but holds only {entries} keys; "
                               "its num-samples is wrong")
        self.beyond_count = self._txn_get(f"image-{self.n + 1:09d}".encode()) is not None
        self._sizes = np.frombuffer(sizes, dtype="<u2").reshape(-1, 2).astype(np.int32) if sizes else None
        if self._sizes is not None and len(self._sizes) != self.n:
            self._sizes = None

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (path / "data.mdb").is_file() or (path.is_file() and path.name == "data.mdb")

    @classmethod
    def open(cls, path: Path) -> LmdbSource:
        return cls(path.parent if path.is_file() else path)

    def paths(self) -> list[Path]:
        return [self.path]

    def sample_name(self, i: int) -> str:
        return f"{self.name}:image-{i + 1:09d}"

    def _txn_get(self, key: bytes) -> bytes | None:
        try:
            with shared_env(self.path).begin() as txn:
                return txn.get(key)
        except lmdb.Error as e:  # a damaged page (CorruptedError, PageNotFoundError, ...)
            raise DatasetError(f"{self.path}: damaged LMDB reading {key.decode(errors='replace')} "
                               f"({type(e).__name__})") from e

    def __len__(self) -> int:
        return self.n

    def _get(self, kind: str, i: int) -> bytes:
        if not 0 <= i < self.n:
            raise IndexError(i)
        value = self._txn_get(f"{kind}-{i + 1:09d}".encode())
        if value is None:
            raise DatasetError(f"{self.path}: missing {kind}-{i + 1:09d}")
        return value

    def image_bytes(self, i: int) -> bytes:
        return self._get("image", i)

    def label(self, i: int) -> str:
        try:
            return unicodedata.normalize("NFC", self._get("label", i).decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DatasetError(f"{self.path}: label-{i + 1:09d} is not UTF-8") from e

    def sizes(self) -> np.ndarray:
        return self._sizes if self._sizes is not None else super().sizes()


class FileListSource(Source):
    """Image files with labels, as listed by a labels file or found beside their `.gt.txt` transcriptions."""

    def __init__(self, root: Path, entries: list[tuple[Path, str]], name: str):
        self.root = root
        self.entries = entries
        self.name = name

    def __len__(self) -> int:
        return len(self.entries)

    def image_bytes(self, i: int) -> bytes:
        path = self.entries[i][0]
        try:
            return path.read_bytes()
        except OSError as e:
            raise DatasetError(f"{path}: cannot read ({e.strerror})") from e

    def image_path(self, i: int) -> Path:
        return self.entries[i][0]

    def paths(self) -> list[Path]:
        return sorted({self.root, *(image for image, _ in self.entries)})

    def sample_name(self, i: int) -> str:
        path = self.image_path(i)
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def label(self, i: int) -> str:
        return self.entries[i][1]



@register_reader("labels-tsv")
class LabelsFileSource(FileListSource):
    """`relative/path<TAB>text` lines: a `.tsv`/`.txt` file, or `labels.tsv` in a folder."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (path.is_file() and path.suffix in (".tsv", ".txt")) or (path / "labels.tsv").is_file()

    @classmethod
    def open(cls, path: Path) -> FileListSource:
        tsv = path if path.is_file() else path / "labels.tsv"
        root = tsv.parent
        entries: list[tuple[Path, str]] = []
        try:
            # utf-8-sig: a BOM from a Windows editor would otherwise become part of the first path;
            # split on newlines only (splitlines would also cut labels at U+2028, U+0085, \x1c...)
            lines = tsv.read_text(encoding="utf-8-sig").split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{tsv}: cannot read labels ({e})") from e
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if "\t" not in line:
                raise DatasetError(f"{tsv}:{n}: expected 'path<TAB>text'")
            rel, text = line.split("\t", 1)
            entries.append((root / rel, unicodedata.normalize("NFC", text)))
        missing = [str(p) for p, _ in entries if not p.is_file()]
        if missing:
            raise DatasetError(f"{tsv}: {len(missing)} listed image(s) missing, e.g. {missing[0]}")
        return cls(root, entries, root.name if tsv.name == "labels.tsv" else tsv.stem)


@register_reader("lmdb-folder")
class LmdbFolderSource:
    """A folder whose subfolders hold LMDBs (e.g. deep-text-recognition-benchmark's training sets): one source."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and next(path.rglob("data.mdb"), None) is not None

    @classmethod
    def open(cls, path: Path) -> Source:
        return ConcatSource([LmdbSource(p.parent) for p in sorted(path.rglob("data.mdb"))])


@register_reader("gt-pairs")
class GtPairsSource(FileListSource):
    """`name.png` + `name.gt.txt` pairs (tesstrain, kraken, Calamari), searched recursively."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and next(path.rglob("*.gt.txt"), None) is not None

    @classmethod
    def open(cls, folder: Path) -> FileListSource:
        entries: list[tuple[Path, str]] = []
        for gt in sorted(folder.rglob("*.gt.txt")):
            stem = gt.name[: -len(".gt.txt")]
            suffixes = IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES)  # scan_001.TIF, IMG_2.JPG
            image = next((gt.with_name(stem + s) for s in suffixes if gt.with_name(stem + s).is_file()), None)
            if image is None:
                raise DatasetError(f"{gt}: no image beside it ({stem}.png, .jpg, ...)")
            try:
                text = gt.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as e:
                raise DatasetError(f"{gt}: cannot read ({e})") from e
            entries.append((image, unicodedata.normalize("NFC", text)))
        return cls(folder, entries, folder.name)


class ConcatSource(Source):
    def __init__(self, sources: Sequence[Source]):
        self.sources = list(sources)
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])
        self.name = "+".join(s.name for s in self.sources)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, i: int) -> tuple[Source, int]:
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.sources[k], i - int(self.offsets[k])

    def image_bytes(self, i: int) -> bytes:
        s, j = self._locate(i)
        return s.image_bytes(j)

    def label(self, i: int) -> str:
        s, j = self._locate(i)
        return s.label(j)

    def sample_name(self, i: int) -> str:
        s, j = self._locate(i)
        return s.sample_name(j)

    def sizes(self) -> np.ndarray:
        return np.concatenate([s.sizes() for s in self.sources]) if self.sources else np.zeros((0, 2), np.int32)

    def paths(self) -> list[Path]:
        return [p for s in self.sources for p in s.paths()]


def open_source(path: str | Path) -> Source:
    """Open a dataset with the first registered reader that recognises it (`readers()` lists them in order)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset")
    for reader in _READERS.values():
        if reader.detect(path):
            return reader.open(path)
    if path.is_file():
        raise DatasetError(f"{path}: a dataset is an LMDB folder, a folder with labels.tsv or .gt.txt pairs, or a .tsv")
    raise DatasetError(f"{path}: no data.mdb, labels.tsv or .gt.txt files found")


def open_sources(paths: Sequence[str | Path]) -> Source:
    sources = [open_source(p) for p in paths]
    return sources[0] if len(sources) == 1 else ConcatSource(sources)


def pack_sizes(sizes: np.ndarray) -> bytes:
    return np.clip(np.asarray(sizes), 0, 65535).astype("<u2").tobytes()


