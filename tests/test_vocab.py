"""Vocab: construction, files, the blank = 0 contract, strict encoding, case folding, NFC, required_frames."""

from __future__ import annotations

import unicodedata

import pytest

from crnn_ocr.errors import OcrError, UnknownCharacterError, VocabError
from crnn_ocr.text.vocab import BLANK, DEFAULT_CHARSET, Vocab, required_frames


def test_blank_is_zero_and_char_i_is_class_i_plus_1():
    v = Vocab("xyz ")
    assert BLANK == 0
    assert len(v) == 4
    assert v.num_classes == 5
    assert [v.index(c) for c in "xyz "] == [1, 2, 3, 4]
    assert v.encode("zyx") == [3, 2, 1]
    assert 0 not in v.encode("x y z")


def test_decode_drops_blank_and_does_not_collapse():
    v = Vocab("ab")
    assert v.decode([1, 0, 1, 1, 2, 0]) == "aaab"
    assert v.decode([]) == ""
    assert v.decode(v.encode("abba")) == "abba"


def test_default_vocab_covers_ascii_and_latin():
    v = Vocab.default()
    assert v.chars == DEFAULT_CHARSET
    assert v.encode("Hello, World! 42 € Ça") == [v.index(c) for c in "Hello, World! 42 € Ça"]
    assert " " in v.chars
    assert "\t" not in v.chars and "\n" not in v.chars


@pytest.mark.parametrize("chars", ["", "aba", "abcc", "a b "])
def test_empty_or_duplicate_vocab_rejected(chars):
    with pytest.raises(VocabError):
        Vocab(chars)


def test_duplicate_message_names_the_character():
    with pytest.raises(VocabError, match="'b'"):
        Vocab("abcb")


def test_control_characters_rejected():
    with pytest.raises(VocabError):
        Vocab("ab\tc")
    with pytest.raises(VocabError):
        Vocab("ab\nc")


def test_errors_are_typed():
    assert issubclass(VocabError, OcrError)
    assert issubclass(UnknownCharacterError, VocabError)


def test_from_file_one_char_per_line(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("a\nb\n \nc\n", encoding="utf-8")  # a space is a line holding one space
    v = Vocab.from_file(p)
    assert v.chars == "ab c"
    assert v.encode("c a") == [4, 3, 1]


def test_from_file_without_trailing_newline(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("x\ny\nz", encoding="utf-8")
    assert Vocab.from_file(p).chars == "xyz"


def test_from_file_single_line(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("0123456789abc \n", encoding="utf-8")
    assert Vocab.from_file(p).chars == "0123456789abc "


def test_from_file_windows_line_endings(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_bytes(b"a\r\nb\r\nc\r\n")
    assert Vocab.from_file(p).chars == "abc"
    p.write_bytes(b"abc\r\n")
    assert Vocab.from_file(p).chars == "abc"


def test_from_file_with_byte_order_mark(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_bytes("\ufeffa\nb\nc\n".encode())
    assert Vocab.from_file(p).chars == "abc"
    p.write_bytes("\ufeffabc\n".encode())
    assert Vocab.from_file(p).chars == "abc"


def test_from_file_decomposed_characters_one_per_line(tmp_path):
    # An editor may save é as e + combining acute: still one character after NFC.
    p = tmp_path / "vocab.txt"
    p.write_text("a\n" + unicodedata.normalize("NFD", "é") + "\nb\n", encoding="utf-8")
    v = Vocab.from_file(p)
    assert v.chars == "a\u00e9b"


def test_from_file_keeps_kwargs(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("abc", encoding="utf-8")
    assert Vocab.from_file(p, fold_case=True).encode("ABC") == [1, 2, 3]


def test_from_file_rejects_mixed_layout_duplicates_and_missing(tmp_path):
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("a\nbc\nd\n", encoding="utf-8")
    with pytest.raises(VocabError, match="one character per line"):
        Vocab.from_file(mixed)
    dup = tmp_path / "dup.txt"
    dup.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(VocabError, match="repeats"):
        Vocab.from_file(dup)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(VocabError, match="empty"):
        Vocab.from_file(empty)
    with pytest.raises(VocabError, match="cannot read"):
        Vocab.from_file(tmp_path / "missing.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("abcé".encode("latin-1"))
    with pytest.raises(VocabError, match="cannot read"):
        Vocab.from_file(latin1)


def test_from_texts_is_sorted_set():
    v = Vocab.from_texts(["hello", "world", "olé"])
    assert v.chars == "".join(sorted(set("helloworldolé")))


def test_strict_encode_names_every_unknown_character():
    v = Vocab("abc")
    with pytest.raises(UnknownCharacterError) as info:
        v.encode("aXbYcX!")
    err = info.value
    assert err.unknown == ["X", "Y", "!"]  # distinct, in order of appearance
    assert err.text == "aXbYcX!"
    for c in "XY!":
        assert repr(c) in str(err)
    assert v.unknown("abc") == []
    assert v.unknown("zz a") == ["z", " "]


def test_fold_case():
    strict = Vocab("abc")
    with pytest.raises(UnknownCharacterError):
        strict.encode("Abc")
    folded = Vocab("abcD", fold_case=True)
    assert folded.encode("ABCd") == [1, 2, 3, 4]
    assert folded.normalize("AbCd") == "abcD"
    with pytest.raises(UnknownCharacterError) as info:
        folded.encode("aEb")
    assert info.value.unknown == ["E"]


def test_fold_case_prefers_exact_character():
    v = Vocab("aA", fold_case=True)
    assert v.encode("Aa") == [2, 1]


def test_nfc_normalisation():
    decomposed = unicodedata.normalize("NFD", "café")
    assert len(decomposed) == 5
    v = Vocab("acfé")
    assert v.encode(decomposed) == v.encode("café") == [2, 1, 3, 4]
    assert v.normalize(decomposed) == "café"
    assert v.unknown(decomposed) == []
    # The vocabulary itself is normalised too.
    v2 = Vocab(unicodedata.normalize("NFD", "é") + "x")
    assert v2.chars == "éx"
    assert len(v2) == 2


def test_equality_and_hash():
    assert Vocab("abc") == Vocab("abc")
    assert Vocab("abc") != Vocab("acb")
    assert len({Vocab("abc"), Vocab("abc")}) == 1


@pytest.mark.parametrize(
    "ids, frames",
    [([], 0), ([1], 1), ([1, 2, 3], 3), ([1, 1], 3), ([1, 1, 1], 5), ([1, 2, 2, 1, 1], 7), ([3, 1, 3], 3)],
)
def test_required_frames(ids, frames):
    assert required_frames(ids) == frames
