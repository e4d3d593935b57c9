"""Chinese, Japanese and Korean lines for scene renders, so the detector learns to find text it cannot read.

Photos of shop fronts and signs (MSRA-TD500 among them) hold CJK lines beside Latin ones; a detector trained on
Latin renders alone misses them. The texts are wordfreq's most frequent words of each language, joined without
spaces into runs (Korean keeps its spaces), and each line is drawn in a font whose character map holds every
character of it (Noto CJK, WenQuanYi, AR PL: `apt-get install fonts-noto-cjk`).

>>> # CJKText(discover_cjk_fonts()).sample(random.Random(0))  ->  ([["中国人民"]], FontInfo(...))
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from crnn_ocr.datasets.synth.fonts import FontInfo, cached_per_file, font_files
from crnn_ocr.errors import DatasetError

CJK_LANGUAGE_SHARES = (("zh", 0.7), ("ja", 0.15), ("ko", 0.15))
HAN_PROBE = "的是中国人"  # a font drawing Chinese must have these; Korean- or Japanese-only fonts are left out
WORDS_PER_LANGUAGE = 6000
MAX_RUN_CHARS = 12


def is_cjk(char: str) -> bool:
    """Han, kana, Hangul and the CJK symbols and punctuation block."""
    o = ord(char)
    return (0x3000 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF
            or 0xF900 <= o <= 0xFAFF)


def _cmap_chars(path: str) -> frozenset:
    from fontTools.ttLib import TTFont

    font = TTFont(path, lazy=True, fontNumber=0)
    try:
        return frozenset(chr(c) for c in (font.getBestCmap() or {}) if is_cjk(chr(c)))
    finally:
        font.close()


def _draws_chinese(path: Path) -> bool:
    try:
        chars = _cmap_chars(str(path))
    except Exception:  # fontTools raises many kinds on broken files; such a file is simply not used
        return False
    return all(c in chars for c in HAN_PROBE)


def discover_cjk_fonts(dirs: list[str | Path] | None = None) -> list[FontInfo]:
    """Fonts under `dirs` (default: the system font folders) that draw Chinese (cached per file, as the Latin
    font coverage is)."""
    files = font_files(dirs)
    return [FontInfo(str(f), f.stem, frozenset())
            for f, draws in zip(files, cached_per_file(files, "cjk_fonts.json", HAN_PROBE, _draws_chinese)) if draws]


@lru_cache(maxsize=4)
def _words(language: str) -> tuple[str, ...]:
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list(language, WORDS_PER_LANGUAGE) if w and all(is_cjk(c) for c in w))


class CJKText:
    """Draws CJK lines and a font for them. Deterministic for a `random.Random`."""

    def __init__(self, fonts: list[FontInfo]):
        if not fonts:
            raise DatasetError("no font draws Chinese: install one (apt-get install fonts-noto-cjk) or set the "
                               "CJK share to 0")
        try:
            words = {lang: _words(lang) for lang, _ in CJK_LANGUAGE_SHARES}
        except ImportError as e:
            raise DatasetError("CJK scene text needs wordfreq's word lists: pip install wordfreq") from e
        self.choices = []  # (font, {language: words it can draw})
        for font in fonts:
            chars = _cmap_chars(font.path)
            drawable = {lang: [w for w in ws if all(c in chars for c in w)] for lang, ws in words.items()}
            self.choices.append((font, {lang: ws for lang, ws in drawable.items() if len(ws) >= 100}))

    def _run(self, words: list[str], rng: random.Random) -> str:
        run = rng.choice(words)
        while len(run) < MAX_RUN_CHARS and rng.random() < 0.6:
            run += rng.choice(words)
        return run[:MAX_RUN_CHARS]

    def sample(self, rng: random.Random) -> tuple[list[list[str]], FontInfo]:
        """(lines of words, the font to draw them in); a Chinese or Japanese "word" is a run of words."""
        font, drawable = rng.choice(self.choices)
        languages = [(lang, share) for lang, share in CJK_LANGUAGE_SHARES if lang in drawable]
        language = rng.choices([lang for lang, _ in languages], [share for _, share in languages])[0]
        words = drawable[language]
        n_lines = 1 if rng.random() < 0.8 else rng.choice((2, 2, 3))
        lines = []
        for _ in range(n_lines):
            if language == "ko":
                lines.append([rng.choice(words) for _ in range(rng.randint(1, 4))])
            else:
                lines.append([self._run(words, rng) for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 3))])
        return lines, font
