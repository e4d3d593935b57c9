"""Code renders: the strings are well formed (real check digits) and `--style codes` draws them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from crnn_ocr.cli import main
from crnn_ocr.datasets.sources import open_source
from crnn_ocr.datasets.synth.codes import FAMILIES, PLATE_PATTERNS, VIN_CHARS, ean13, iban, plate, sample_code, upc_a, vin
from crnn_ocr.text.vocab import DEFAULT_CHARSET

FONTS = Path(__file__).resolve().parents[1] / "data" / "fonts"


def iban_is_valid(code: str) -> bool:
    compact = code.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def test_ibans_carry_valid_check_digits_and_print_in_groups_of_four():
    rng = random.Random(0)
    codes = [iban(rng) for _ in range(200)]
    assert all(iban_is_valid(c) for c in codes)
    grouped = [c for c in codes if " " in c]
    assert grouped and all(len(g) <= 4 for c in grouped for g in c.split(" "))
    assert not iban_is_valid("DE00" + codes[0].replace(" ", "")[4:])


def test_barcode_digits_carry_their_check_digit():
    rng = random.Random(1)
    for code in (ean13(rng) for _ in range(100)):
        digits = list(map(int, code))
        assert len(digits) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    for code in (upc_a(rng) for _ in range(100)):
        digits = list(map(int, code))
        assert len(digits) == 12 and (3 * sum(digits[0::2]) + sum(digits[1::2])) % 10 == 0


def test_plate_patterns_hold_only_pattern_letters_and_separators():
    assert all(set(p) <= set("A9CX -") for p in PLATE_PATTERNS)


def test_vins_plates_and_every_family_are_writable_strings():
    rng = random.Random(2)
    assert all(len(v) == 17 and set(v) <= set(VIN_CHARS) for v in (vin(rng) for _ in range(50)))
    plates = [plate(rng) for _ in range(200)]
    assert all(any(c.isdigit() for c in p) and any(c.isalpha() for c in p) for p in plates)
    assert len(set(plates)) > 190
    for family in FAMILIES:
        texts = [sample_code(rng, family) for _ in range(30)]
        assert all(t.strip() and set(t) <= set(DEFAULT_CHARSET) for t in texts), family


def test_synth_style_codes_writes_code_crops(tmp_path):
    out = tmp_path / "codes.lmdb"
    result = CliRunner().invoke(main, ["data", "synth", "-n", "30", "-o", str(out), "--workers", "1", "--fonts",
                                       str(FONTS), "--style", "codes", "--seed", "5", "-q"])
    assert result.exit_code == 0, result.output
    source = open_source(out)
    labels = source.labels()
    assert len(labels) == 30 and sum(any(c.isdigit() for c in t) for t in labels) >= 27
    assert all(source.image_bytes(i) for i in range(30))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_plate_look_has_a_border_and_keeps_the_text(seed):
    import numpy as np

    from crnn_ocr.datasets.synth import discover_fonts
    from crnn_ocr.datasets.synth.render import Renderer

    renderer = Renderer(discover_fonts([FONTS], include_bundled=False), style="codes", color=True)
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    mask = np.zeros((40, 160), np.uint8)
    mask[10:30, 20:140] = 255
    image = renderer._compose_plate(mask, rng, nprng)
    assert image.shape[0] >= 40 and image.shape[1] >= 160 and image.dtype == np.uint8
    gray = image.mean(axis=2)
    assert gray.max() - gray.min() > 100  # text and plate contrast
