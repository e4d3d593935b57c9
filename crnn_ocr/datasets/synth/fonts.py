"""Font discovery with glyph coverage, so a font is only chosen for text whose every character it has."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from crnn_ocr.errors import DatasetError
from crnn_ocr.text.vocab import LATIN_CHARSET

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
                    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
def _bundled_font_dir() -> Path:
    """data/fonts of a checkout, or the crnn_ocr.fonts package it is installed as."""
    try:
        from importlib.resources import files

        return Path(str(files("crnn_ocr.fonts")))
    except (ImportError, ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[3] / "data" / "fonts"


BUNDLED_FONT_DIR = _bundled_font_dir()
REQUIRED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
NOT_TEXT_FONTS = ("symbol", "dingbat", "emoji", "awesome", "music", "math", "d050000l", "wingding", "ornament",
                  "keyboard")
CHECKED_CHARS = LATIN_CHARSET + "₹₽₩¤™℃№"
CHECKED_HASH = hashlib.sha1(CHECKED_CHARS.encode()).hexdigest()[:8]  # a changed set re-reads every font


@dataclass(frozen=True)
class FontInfo:
    path: str
    family: str
    coverage: frozenset

    def covers(self, text: str) -> bool:
        return all(c in self.coverage or c == " " for c in text)


def _font_info(path: Path) -> FontInfo | None:
    from fontTools.ttLib import TTFont, TTLibError

    try:
        font = TTFont(str(path), lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        family = font["name"].getBestFamilyName() or path.stem
        glyph_set = font.getGlyphSet()
        empty = set()
        if "glyf" in font:
            glyf = font["glyf"]
            empty = {c for c in CHECKED_CHARS if ord(c) in cmap and c != " "
                     and getattr(glyf[cmap[ord(c)]], "numberOfContours", 1) == 0}
        font.close()
    except (TTLibError, OSError, KeyError, AssertionError, ValueError, TypeError, AttributeError):
        return None
    del glyph_set
    coverage = frozenset(c for c in CHECKED_CHARS if ord(c) in cmap and c not in empty)
    if not all(c in coverage for c in REQUIRED):
        return None
    return FontInfo(str(path), family, coverage)


def _is_text_family(family: str) -> bool:
    """False for symbol, emoji and keycap fonts (Linux Biolinum Keyboard draws each letter inside a key)."""
    return not any(word in family.lower() for word in NOT_TEXT_FONTS)


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return base / "crnn_ocr" / "fonts.json"


def font_files(dirs: list[str | Path] | None = None) -> list[Path]:
    """Font files under `dirs` (default: the system font folders), sorted."""
    roots = [Path(d).expanduser() for d in (dirs if dirs else SYSTEM_FONT_DIRS)]
    return sorted({p.resolve() for r in roots if r.is_dir() for p in r.rglob("*") if p.suffix.lower() in FONT_SUFFIXES})


def cached_per_file(files: list[Path], cache_name: str, salt: str, compute) -> list:
    """`compute(path)` (a JSON value) for each file, cached under ~/.cache/crnn_ocr/`cache_name`, keyed by path,
    size, mtime and `salt` (a changed salt recomputes every file)."""
    cache_path = _cache_file().with_name(cache_name)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    values, changed = [], False
    for f in files:
        st = f.stat()
        key = hashlib.sha1(f"{f}|{st.st_size}|{st.st_mtime_ns}|{salt}".encode()).hexdigest()
        if key not in cache:
            cache[key] = compute(f)
            changed = True
        values.append(cache[key])
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache))
        except OSError:
            pass
    return values


def _coverage_entry(path: Path) -> dict | None:
    info = _font_info(path)
    return None if info is None else {"family": info.family, "coverage": "".join(sorted(info.coverage))}


def discover_fonts(dirs: list[str | Path] | None = None, include_bundled: bool = True) -> list[FontInfo]:
    """Text fonts under `dirs` (default: the system font folders) plus the fonts bundled with the project.

    Coverage is computed once per font file and cached (keyed by path, size and mtime).
    """
    files = font_files(list(dirs or SYSTEM_FONT_DIRS) + ([BUNDLED_FONT_DIR] if include_bundled else []))
    fonts = [FontInfo(str(f), entry["family"], frozenset(entry["coverage"]))
             for f, entry in zip(files, cached_per_file(files, _cache_file().name, CHECKED_HASH, _coverage_entry))
             if entry is not None and _is_text_family(entry["family"]) and not _is_script_specific_noto(entry["family"])]
    if dirs and not fonts:
        raise DatasetError(f"no usable text fonts under {', '.join(map(str, dirs))}")
    return fonts


_NOTO_LATIN = {"noto sans", "noto serif", "noto sans mono", "noto mono", "noto sans display", "noto serif display"}


def _is_script_specific_noto(family: str) -> bool:
    """Noto's per-script fonts repeat Noto Sans's Latin; keep only the Latin families so no look dominates."""
    f = family.lower()
    return f.startswith("noto ") and f not in _NOTO_LATIN
