"""Text to render: real word frequencies, numbers, dates, prices, codes, punctuation, single words and lines."""

from __future__ import annotations

import math
import random
import string
from functools import cache

from crnn_ocr.datasets.synth.codes import sample_code
from crnn_ocr.defaults import FIRST_LANGUAGES
from crnn_ocr.defaults import WORD_LIST_LANGUAGES as LANGUAGES
from crnn_ocr.defaults import word_list as shipped_word_list
from crnn_ocr.text.vocab import DEFAULT_CHARSET, LATIN_EXTENDED

DOTTED_I_LANGUAGES = ("tr",)  # i / İ and ı / I are separate letters
CURRENCIES = "$€£¥"
UNITS = ("kg", "g", "ml", "L", "km", "m", "cm", "mm", "%", "°C", "°F", "pcs", "x", "GB", "MB")
PUNCT_AFTER = ".,:;!?"
STYLES = ("mixed", "document", "codes")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_FALLBACK_WORDS: tuple[str, ...] = ("the", "and", "total", "cash", "change", "street", "open", "hello", "world", "price", "sale")


@cache
def word_list(lang: str, n: int = 40000) -> tuple[str, ...]:
    """The `n` most frequent words of `lang`: the shipped lists (data/words, exported from wordfreq), else wordfreq."""
    path = shipped_word_list(lang)
    if path is not None:
        return tuple(w for w in path.read_text(encoding="utf-8").split("\n")[:n] if w) or _FALLBACK_WORDS
    try:
        from wordfreq import top_n_list
    except ImportError:
        return _FALLBACK_WORDS
    words = tuple(w for w in top_n_list(lang, n) if w.isalpha() or "'" in w or "-" in w)
    return words or _FALLBACK_WORDS


def upper(word: str, lang: str) -> str:
    if lang in DOTTED_I_LANGUAGES:
        word = word.replace("i", "İ").replace("ı", "I")
    return word.upper()


def default_languages(charset: str) -> tuple[str, ...]:
    """Every language a charset can write: the first seven, and all of LATIN_LANGUAGES once it holds Latin
    Extended-A (so the default charset's renders stay as they were)."""
    return LANGUAGES if all(c in charset for c in LATIN_EXTENDED) else FIRST_LANGUAGES


@cache
def writable_words(lang: str, charset: str) -> tuple[str, ...]:
    """`word_list(lang)` without the words `charset` cannot write; the first seven languages' lists as they are (the
    generator skips a text its charset cannot write), so their renders stay draw for draw what they were."""
    words = word_list(lang)
    if lang in FIRST_LANGUAGES:
        return words
    allowed = set(charset)
    kept = tuple(w for w in words if all(c in allowed for c in w))
    return words if len(kept) == len(words) else (kept or _FALLBACK_WORDS)


class TextSampler:
    """Draws strings to render. Deterministic for a given `random.Random`.

    English takes `english_share` of the words (by default 0.7, in running text 0.85; 0.4 and 0.5 when the 16
    languages of LATIN_LANGUAGES are drawn too); the other languages share the rest evenly. `style="codes"` draws
    code-like strings only (`codes.sample_code`).

    >>> TextSampler().sample(random.Random(0)) != ""
    True
    """

    def __init__(self, charset: str = DEFAULT_CHARSET, line_share: float = 0.35, max_line_chars: int = 60,
                 style: str = "mixed", languages: tuple[str, ...] | None = None, english_share: float | None = None):
        if style not in STYLES:
            raise ValueError(f"unknown text style {style!r}; choose from {', '.join(STYLES)}")
        self.charset = charset
        self.line_share = line_share
        self.max_line_chars = max_line_chars
        self.style = style
        self.rare = [c for c in charset if not c.isascii() or c in string.punctuation]
        self.languages = tuple(languages or default_languages(charset))
        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"no word list for {', '.join(unknown)}; choose from {', '.join(LANGUAGES)}")
        many = len(self.languages) > len(FIRST_LANGUAGES)
        self.english_share = english_share if english_share is not None else (0.4 if many else 0.7)
        self.prose_english_share = english_share if english_share is not None else (0.5 if many else 0.85)
        self.others = tuple(lang for lang in self.languages if lang != "en") or ("en",)
        if "en" not in self.languages:
            self.english_share = self.prose_english_share = 0.0

    def _language(self, rng: random.Random, english_share: float) -> str:
        return "en" if rng.random() < english_share else rng.choice(self.others)

    def sample(self, rng: random.Random) -> str:
        if self.style == "codes":
            return sample_code(rng)
        if self.style == "document":
            return self.prose_line(rng) if rng.random() < max(self.line_share, 0.85) else self.token(rng)
        if rng.random() < self.line_share:
            return self.line(rng)
        return self.token(rng)

    def prose_line(self, rng: random.Random) -> str:
        """A line cut out of running text, as in books, papers and letters: mostly lower-case words with
        sentence punctuation, capitals after full stops, the odd number, citation, quote or hyphenated break."""
        target = rng.randint(15, 95)
        words: list[str] = []
        capital = rng.random() < 0.4
        while sum(len(w) + 1 for w in words) < target:
            words.append(self._prose_word(rng, capital))
            capital = words[-1][-1] in ".?!"
        text = " ".join(words)
        if rng.random() < 0.12:
            text = text.rstrip(PUNCT_AFTER) + "-"
        return text.strip()

    def _prose_word(self, rng: random.Random, capital: bool) -> str:
        r = rng.random()
        if r < 0.04:
            w = self.number(rng) if rng.random() < 0.5 else str(rng.randint(1, 2030))
        elif r < 0.06:
            w = rng.choice(("[{}]", "({})")).format(rng.randint(1, 60))
        elif r < 0.08:
            w = self.code(rng)
        else:
            lang = self._language(rng, self.prose_english_share)
            words = writable_words(lang, self.charset)
            w = words[min(int(math.exp(rng.random() * math.log(len(words)))) - 1, len(words) - 1)]
            if capital or rng.random() < 0.08:
                w = upper(w[:1], lang) + w[1:]
            elif rng.random() < 0.02:
                w = upper(w, lang)
        q = rng.random()
        if q < 0.015:
            w = rng.choice(("``", "\"", "“", "'", "‘")) + w + rng.choice(("''", "\"", "”", "'", "’"))
        elif q < 0.03:
            w = "(" + w + ")"
        p = rng.random()
        if p < 0.07:
            w += ","
        elif p < 0.11:
            w += "."
        elif p < 0.125:
            w += rng.choice((";", ":", "?", "!"))
        return w

    def line(self, rng: random.Random) -> str:
        n = rng.choice((2, 2, 3, 3, 4, 5, 6, 8, 10))
        style = rng.random()
        tokens = []
        for _ in range(n):
            tokens.append(self.token(rng, lines=True))
            if sum(len(t) + 1 for t in tokens) > self.max_line_chars:
                break
        if style < 0.15:
            tokens = [t.upper() for t in tokens]
        text = " ".join(tokens)
        if rng.random() < 0.15:
            text = text + " " + self.number(rng)
        return text[: self.max_line_chars].strip()

    def token(self, rng: random.Random, lines: bool = False) -> str:
        r = rng.random()
        if r < 0.62:
            return self.word(rng, lines)
        if r < 0.80:
            return self.number(rng)
        if r < 0.87:
            return self.code(rng)
        if r < 0.92:
            return self.date_or_time(rng)
        if r < 0.96:
            return self.web(rng)
        return "".join(rng.choice(self.charset.replace(" ", "")) for _ in range(rng.randint(1, 8)))

    def word(self, rng: random.Random, lines: bool = False) -> str:
        lang = self._language(rng, self.english_share)
        words = writable_words(lang, self.charset)
        rank = int(len(words) * rng.random() ** 1.7)
        w = words[min(rank, len(words) - 1)]
        c = rng.random()
        if c < 0.3:
            w = upper(w, lang)
        elif c < 0.6:
            w = upper(w[:1], lang) + w[1:]
        if rng.random() < 0.12:
            w = w + rng.choice(PUNCT_AFTER)
        elif rng.random() < 0.04:
            q = rng.choice(('""', "()", "''", "“”", "‘’", "[]", "«»"))
            w = q[0] + w + q[1]
        elif rng.random() < 0.04:
            w = w + rng.choice(("'s", "-", "&", "/", "*", "#"))
        return w

    def number(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.3:
            return str(rng.randint(0, 10 ** rng.randint(1, 6)))
        if r < 0.55:
            value = f"{rng.uniform(0, 10 ** rng.randint(1, 4)):,.2f}"
            if rng.random() < 0.3:
                value = value.replace(",", " ").replace(".", ",")
            cur = rng.choice(CURRENCIES)
            return rng.choice((cur + value, value + cur, value, "RM" + value, value + " " + cur))
        if r < 0.7:
            return f"{rng.uniform(0, 1000):.{rng.randint(0, 3)}f}{rng.choice(UNITS)}"
        if r < 0.85:
            return rng.choice(("+", "(", "")) + "-".join(str(rng.randint(10, 9999)) for _ in range(rng.randint(2, 4)))
        return f"{rng.randint(1, 99)}{rng.choice(('%', 'x', '/', '.', '-', '°'))}{rng.randint(0, 99) if rng.random() < 0.5 else ''}"

    def code(self, rng: random.Random) -> str:
        groups = []
        for _ in range(rng.randint(1, 3)):
            alphabet = rng.choice((string.ascii_uppercase, string.digits, string.ascii_uppercase + string.digits))
            groups.append("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 6))))
        return rng.choice(("-", "", "/", " ", ".")).join(groups)

    def date_or_time(self, rng: random.Random) -> str:
        d, m, y = rng.randint(1, 31), rng.randint(1, 12), rng.randint(1950, 2035)
        return rng.choice((
            f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y % 100:02d}",
            f"{d} {MONTHS[m - 1]} {y}", f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(('AM', 'PM', 'am', 'pm'))}",
        ))

    def web(self, rng: random.Random) -> str:
        w = self.word(rng).lower().strip(PUNCT_AFTER + "\"'()[]“”‘’«»")
        return rng.choice((f"www.{w}.com", f"{w}@{self.word(rng).lower().strip(PUNCT_AFTER)}.com", f"#{w}", f"@{w}",
                           f"{w}.{rng.choice(('com', 'net', 'org', 'de', 'co.uk'))}"))
