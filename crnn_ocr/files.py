"""Writing outputs safely: atomic files, and replacing an output the project wrote and nothing else.

`--overwrite` must never delete what the user did not mean: the source being read, an unrelated folder, a
plain file. An output is replaced only when it is recognisably one of ours (`is_our_lmdb`, `is_labels_list`,
or a caller's own test, such as the LMDB writer's), never when it is or contains a path being read, and the new output is written beside
it under a temporary name and swapped in only once complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crnn_ocr.errors import DatasetError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (with the usual file mode), on any
    failure it is removed. A crash never leaves half a file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def is_labels_list(path: Path, max_bytes: int = 256 << 20) -> bool:
    """A plain file of `path<TAB>text` lines, as `ocr data split` writes."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > max_bytes:
        return False
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return all("\t" in line for line in lines if line.strip())


def _overlaps(a: Path, b: Path) -> bool:
    """True when deleting `a` would delete `b` (b is a, or lies inside it)."""
    return a == b or a in b.parents


def check_replaceable(path: str | Path, overwrite: bool, is_ours: Callable[[Path], bool], kind: str,
                      protected: Iterable[str | Path] = ()) -> None:
    """Raise DatasetError unless `path` may be written: it does not exist, or `overwrite` is set and it is
    one of ours (`is_ours`) and holds none of the `protected` paths (the inputs)."""
    path = Path(path)
    target = path.resolve()
    for source in protected:
        if _overlaps(target, Path(source).resolve()):
            raise DatasetError(f"{path}: is the input {source} or holds it; choose another output")
    if not path.exists() and not path.is_symlink():
        return
    if not overwrite:
        raise DatasetError(f"{path}: already exists (use --overwrite)")
    if not is_ours(path):
        raise DatasetError(f"{path}: exists and is not {kind} written by crnn_ocr; refusing to replace it "
                           "(remove it yourself or choose another output)")


def staging_path(path: Path) -> Path:
    """A fresh name beside `path` for an output being written."""
    return path.parent / f".{path.name}.partial-{os.getpid()}"


def swap_in(staged: Path, path: Path) -> None:
    """Put the complete output `staged` at `path`, removing the old output only after the new one is in place."""
    old = None
    if path.exists() or path.is_symlink():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(staged, path)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def discard(staged: Path) -> None:
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged, ignore_errors=True)
    else:
        staged.unlink(missing_ok=True)
