"""Per-input limits (docs/limits.md): bytes, pixels, lines and seconds, in the library and as `ocr recognize` flags."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_page import BarReader, bar_page

import crnn_ocr.page.limits as limits_module
from crnn_ocr.cli import main
from crnn_ocr.errors import ImageTooLargeError
from crnn_ocr.page import read_page
from crnn_ocr.page.limits import Clocks, Limits, parse_size, recognize_within
from crnn_ocr.page.reading import read_pages


@pytest.mark.parametrize("text, value", [("256M", 256_000_000), ("1.5G", 1_500_000_000), ("120000000", 120_000_000),
                                         ("64k", 64_000), ("2 MB", 2_000_000), ("3MiB", 3_000_000)])
def test_sizes_parse_with_decimal_suffixes(text, value):
    assert parse_size(text) == value


def test_byte_sizes_count_in_binary_multiples_as_the_default_does():
    from crnn_ocr.image.io import DEFAULT_MAX_BYTES

    assert parse_size("256M", binary=True) == DEFAULT_MAX_BYTES and parse_size("1k", binary=True) == 1024


@pytest.mark.parametrize("text", ["", "big", "-5M", "0", "5X", "1e9"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError):
        Limits(max_bytes=0)
    with pytest.raises(ValueError):
        Limits(seconds=-1)
    with pytest.raises(ValueError):
        Limits(seconds=float("nan"))
    assert Limits(max_lines=0, seconds=0).seconds == 0


class FakeTime:
    """A clock that moves only when the recogniser reads: one second per line piece."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TickingReader(BarReader):
    def __init__(self, clock: FakeTime):
        super().__init__()
        self.clock = clock

    def recognize_arrays(self, arrays):
        self.clock.now += len(arrays)
        return super().recognize_arrays(arrays)


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(limits_module.time, "perf_counter", clock)
    monkeypatch.setattr(limits_module, "RECOGNITION_SLICE", 1)
    return clock


def test_a_page_out_of_time_returns_the_lines_read_so_far_and_says_so(fake_time):
    page = bar_page("columns", seed=2)
    full = read_page(BarReader(), page.image, layout="page")
    cut = read_page(TickingReader(fake_time), page.image, layout="page", limits=Limits(seconds=3.5))
    assert len(full.lines) > 4
    assert [line.text for line in cut.lines] == [line.text for line in full.lines[:4]]
    assert cut.warnings == [f"time limit of 3.5 s reached: read 4 of {len(full.lines)} lines"]


def test_each_image_has_its_own_time(fake_time):
    page = bar_page("columns", seed=2)
    crop = bar_page("columns", seed=3).image[:60, :300]
    alone = read_page(BarReader(), crop, layout="line")
    cut_page, crop_result = read_pages(TickingReader(fake_time), [page.image, crop], "page",
                                       limits=Limits(seconds=2.5))
    assert len(cut_page.lines) == 3 and cut_page.warnings
    assert [line.text for line in crop_result.lines] == [line.text for line in alone.lines] and alone.lines


def test_no_time_limit_reads_everything_in_one_pass(fake_time):
    page = bar_page("columns", seed=2)
    reader = TickingReader(fake_time)
    result = read_page(reader, page.image, layout="page", limits=Limits(seconds=0))
    assert len(reader.calls) == 1 and not result.warnings and result.lines


def test_recognize_within_charges_shared_slices_to_their_owners():
    clock = FakeTime()
    clocks = Clocks(2, 2.0, now=clock)

    def recognize(arrays):
        clock.now += len(arrays)
        return list(arrays)

    got = recognize_within(recognize, list(range(8)), [0, 0, 0, 0, 1, 1, 1, 1], clocks, slice_size=2)
    # two pieces cost 2 s; owner 0 is out of time after its first slice, owner 1 after its first
    assert got == [0, 1, None, None, 4, 5, None, None]
    assert clocks.spent == [2.0, 2.0]


def test_the_line_limit_applies_to_any_layout():
    page = bar_page("columns", seed=2)
    capped = read_page(BarReader(), page.image, layout="page", limits=Limits(max_lines=1))
    assert len(capped.lines) == 1 and "read the first 1 in reading order" in capped.warnings[0]


def test_the_pixel_limit_refuses_an_array_too():
    with pytest.raises(ImageTooLargeError):
        read_page(BarReader(), np.full((100, 200), 255, np.uint8), layout="page", limits=Limits(max_pixels=10_000))


@pytest.fixture
def files(tmp_path):
    page = bar_page("columns", seed=2)
    Image.fromarray(page.image).save(tmp_path / "page.png")
    Image.fromarray(np.full((32, 100), 255, np.uint8)).save(tmp_path / "small.png")
    return tmp_path


def run(args, tiny_checkpoint):
    return CliRunner().invoke(main, ["recognize", "--backend", "torch", "-m", str(tiny_checkpoint), "--no-detector",
                                     "--no-verifier", "-q", *args])


def test_cli_max_pixels_refuses_one_input_and_reads_the_others(files, tiny_checkpoint):
    result = run([str(files / "page.png"), str(files / "small.png"), "--max-pixels", "10k"], tiny_checkpoint)
    assert result.exit_code == 1
    assert "page.png: image too large" in result.stderr and "limit 10000" in result.stderr
    assert "small.png" in result.stdout and "page.png" not in result.stdout


def test_cli_max_bytes_refuses_before_reading(files, tiny_checkpoint):
    size = (files / "page.png").stat().st_size
    result = run([str(files / "page.png"), str(files / "small.png"), "--max-bytes", str(size - 1)], tiny_checkpoint)
    assert result.exit_code == 1 and f"file too large ({size} bytes" in result.stderr
    assert "small.png" in result.stdout


def test_cli_max_lines_and_timeout_warn_and_keep_what_was_read(files, tiny_checkpoint):
    lines = run([str(files / "page.png"), "--layout", "page", "--max-lines", "1", "--json"], tiny_checkpoint)
    assert lines.exit_code == 0 and "read the first 1 in reading order" in lines.stderr
    out_of_time = run([str(files / "page.png"), "--layout", "page", "--timeout", "1e-9", "--json"], tiny_checkpoint)
    assert out_of_time.exit_code == 0 and "time limit of 1e-09 s reached: read 0 of" in out_of_time.stderr


def test_cli_a_bad_size_is_a_usage_error(files, tiny_checkpoint):
    result = run([str(files / "small.png"), "--max-bytes", "lots"], tiny_checkpoint)
    assert result.exit_code == 2 and "not a size" in result.stderr


def test_a_lexicon_from_a_device_is_bounded(files, tiny_checkpoint):
    result = run([str(files / "small.png"), "--lexicon", "/dev/zero", "--max-bytes", "1M"], tiny_checkpoint)
    assert result.exit_code == 1 and "cannot read lexicon /dev/zero: more than 1048576 bytes" in result.stderr


def test_the_library_takes_the_same_limits(files):
    import crnn_ocr

    reader = crnn_ocr.load(limits=crnn_ocr.Limits(max_pixels=10_000), detector=False, verifier=False)
    with pytest.raises(ImageTooLargeError):
        reader.read(files / "page.png")
    assert reader.read(files / "small.png").pages


def test_cli_batch_pixels_changes_memory_not_results(files, tiny_checkpoint):
    paths = [str(files / "page.png"), str(files / "small.png")]
    whole = run([*paths, "--json"], tiny_checkpoint)
    one_by_one = run([*paths, "--json", "--batch-pixels", "1"], tiny_checkpoint)
    assert whole.exit_code == one_by_one.exit_code == 0 and whole.stdout == one_by_one.stdout and whole.stdout
