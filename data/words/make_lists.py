"""Export the renderer's word lists from wordfreq (see README.md here)."""

from pathlib import Path

from wordfreq import top_n_list

HERE = Path(__file__).resolve().parent

for lang in ("en", "de", "fr", "es", "it", "pt", "nl"):
    words = [w for w in top_n_list(lang, 40000) if w.isalpha() or "'" in w or "-" in w]
    (HERE / f"{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
