"""All of Latin script: the `latin` charset, word lists of 23 languages, their renders and dictionaries."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crnn_ocr.cli import main
from crnn_ocr.config import TrainConfig
from crnn_ocr.datasets.sources import open_source
from crnn_ocr.datasets.synth.text import FIRST_LANGUAGES, LANGUAGES, TextSampler, default_languages, upper, word_list
from crnn_ocr.defaults import LATIN_LANGUAGES
from crnn_ocr.text.dictionary import load_dictionary
from crnn_ocr.text.vocab import BLANK, DEFAULT_CHARSET, LATIN_CHARSET, LATIN_EXTENDED, Vocab, greedy_decode
from crnn_ocr.train.loop import resolve_vocab

FONTS = Path(__file__).resolve().parents[1] / "data" / "fonts"

# a letter each language writes that the default charset lacks
SIGNATURE = {"cs": "ř", "pl": "ł", "sk": "ľ", "sl": "č", "hr": "đ", "hu": "ő", "ro": "ș", "tr": "ı", "lv": "ā",
             "lt": "ė", "is": "þ", "ca": "·"}


def test_latin_charset_extends_the_default_one_without_repeats():
    assert LATIN_CHARSET.startswith(DEFAULT_CHARSET)
    assert len(set(LATIN_CHARSET)) == len(LATIN_CHARSET)
    for c in "čćłőşğıżřůșț„‚ŁŐİĞŠŽ":
        assert c in LATIN_EXTENDED


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_word_list_is_written_in_the_latin_charset(lang):
    words = word_list(lang)
    assert len(words) > 20000
    letters = set(LATIN_CHARSET) | {"'", "-"}
    outside = sum(not set(w) <= letters for w in words)
    assert outside == 0 if lang in LATIN_LANGUAGES else outside < 20  # the first seven are kept as exported
    if lang in SIGNATURE:
        assert any(SIGNATURE[lang] in w for w in words[:2000])


def test_turkish_capitals_keep_the_dot_of_i():
    assert upper("istanbul ılık", "tr") == "İSTANBUL ILIK"
    assert upper("istanbul", "en") == "ISTANBUL"


def test_the_default_charset_draws_only_its_seven_languages():
    assert default_languages(DEFAULT_CHARSET) == FIRST_LANGUAGES
    assert default_languages(LATIN_CHARSET) == LANGUAGES
    rng = random.Random(0)
    sampler = TextSampler(DEFAULT_CHARSET)
    allowed = set(DEFAULT_CHARSET)
    words = [sampler.word(rng) for _ in range(2000)]
    assert sum(not set(w) <= allowed for w in words) <= 5  # the lists' few foreign words: the generator skips them


def test_latin_samples_use_extended_letters_and_stay_in_the_charset():
    rng = random.Random(1)
    sampler = TextSampler(LATIN_CHARSET)
    texts = [sampler.word(rng) for _ in range(2000)]
    assert sum(not set(t) <= set(LATIN_CHARSET) for t in texts) <= 5
    extended = [t for t in texts if set(t) & set(LATIN_EXTENDED)]
    assert len(extended) > 100  # the 16 new languages take well over a tenth of the words


def test_chosen_languages_only():
    rng = random.Random(2)
    sampler = TextSampler(LATIN_CHARSET, languages=("pl",))
    polish = set(word_list("pl"))
    words = [sampler.word(rng).strip(".,:;!?\"'()[]“”‘’«»&/*#-").lower() for _ in range(200)]
    assert sum(w.removesuffix("'s") in polish for w in words) > 180
    with pytest.raises(ValueError, match="no word list for xx"):
        TextSampler(LATIN_CHARSET, languages=("xx",))


def test_training_resolves_the_latin_charset_by_name():
    cfg = TrainConfig.from_dict({"vocab": "latin"})
    assert resolve_vocab(cfg, None) == Vocab(LATIN_CHARSET)


def test_synth_renders_latin_crops_and_rejects_unknown_languages(tmp_path):
    out = tmp_path / "latin.lmdb"
    result = CliRunner().invoke(main, ["data", "synth", "-n", "40", "-o", str(out), "--workers", "1", "--fonts",
                                       str(FONTS), "--charset", "latin", "--languages", "cs,pl,hu", "-q"])
    assert result.exit_code == 0, result.output
    labels = open_source(out).labels()
    assert len(labels) == 40 and all(set(t) <= set(LATIN_CHARSET) for t in labels)
    bad = CliRunner().invoke(main, ["data", "synth", "-n", "5", "-o", str(tmp_path / "x"), "--languages", "en,xx"])
    assert bad.exit_code != 0
    assert "no word list for xx" in bad.output and "Traceback" not in bad.output


def test_a_new_language_dictionary_corrects_towards_its_diacritics():
    vocab = Vocab(LATIN_CHARSET)
    polish = load_dictionary("pl", vocab)
    assert "żołnierz" in polish.known
    frames = []
    for c, p in [("ż", 0.9), ("o", 0.95), ("l", 0.5), ("n", 0.95), ("i", 0.95), ("e", 0.95), ("r", 0.95), ("z", 0.95)]:
        row = np.full(vocab.num_classes, (1 - p) / (vocab.num_classes - 1))
        row[vocab.index(c)] = p
        if c == "l":  # 'ł' nearly as likely as the 'l' the network preferred
            row[vocab.index("ł")] = 0.45
            row /= row.sum()
        blank = np.full(vocab.num_classes, 0.05 / (vocab.num_classes - 1))
        blank[BLANK] = 0.95
        frames += [row, blank]
    logp = np.log(np.array(frames))
    reading = greedy_decode(logp, vocab)
    assert reading.text == "żolnierz"
    assert polish.correct(logp, reading).text == "żołnierz"
    with pytest.raises(Exception, match="no word"):
        load_dictionary("pl", Vocab("0123456789"))
