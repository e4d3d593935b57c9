"""Export the renderer's and the dictionaries' word lists from wordfreq (see README.md here)."""

from pathlib import Path

from wordfreq import top_n_list

from crnn_ocr.defaults import FIRST_LANGUAGES, LATIN_LANGUAGES
from crnn_ocr.text.vocab import LATIN_CHARSET

HERE = Path(__file__).resolve().parent
WORDFREQ_CODE = {"hr": "sh"}  # wordfreq lists Croatian, Bosnian and Serbian together; the Latin spellings are kept
LETTERS = {c for c in LATIN_CHARSET if c.isalpha()}


def is_word(w: str) -> bool:
    return w.isalpha() or "'" in w or "-" in w


for lang in FIRST_LANGUAGES:  # the lists the shipped recogniser's renders and dictionaries were made from
    words = [w for w in top_n_list(lang, 40000) if is_word(w)]
    (HERE / f"{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")

for lang in LATIN_LANGUAGES:
    candidates = top_n_list(WORDFREQ_CODE.get(lang, lang), 60000)
    joiners = "'-·"  # Catalan writes l·l with a middle dot
    words = [w for w in candidates if any(c.isalpha() for c in w) and all(c in LETTERS or c in joiners for c in w)]
    words = words[:40000]
    (HERE / f"{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
