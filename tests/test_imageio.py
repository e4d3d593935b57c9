"""read_image: every input kind, the odd formats Pillow writes, and clear errors for bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crnn_ocr.errors import ImageError, ImageTooLargeError, OcrError
from crnn_ocr.image.io import find_images, read_image


def gradient(h: int = 20, w: int = 30) -> np.ndarray:
    """A uint8 gray image whose every pixel differs in a known way (so flips and rotations show)."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 7 + y * 3) % 256).astype(np.uint8)


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kwargs)
    return buf.getvalue()


# ---------------------------------------------------------------- input kinds


def test_path_str_bytes_pil_and_array_agree(tmp_path):
    g = gradient()
    path = tmp_path / "g.png"
    Image.fromarray(g).save(path)
    data = path.read_bytes()
    for source in (path, str(path), data, bytearray(data), memoryview(data), Image.open(path), g):
        out = read_image(source)
        assert out.dtype == np.uint8 and out.shape == g.shape
        np.testing.assert_array_equal(out, g)


def test_three_channels():
    g = gradient()
    out = read_image(g, channels=3)
    assert out.shape == (*g.shape, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 0] = 200
    out = read_image(png_bytes(Image.fromarray(rgb)), channels=3)
    np.testing.assert_array_equal(out, rgb)
    with pytest.raises(ValueError):
        read_image(g, channels=2)


def test_rgb_array_to_gray_uses_luminance():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = (255, 0, 0)  # red is darker than green in luma
    rgb[:, 3:] = (0, 255, 0)
    out = read_image(rgb)
    assert out.shape == (4, 6)
    assert 60 < out[0, 0] < 90 and 135 < out[0, 5] < 165


def test_rgba_array_composited_on_white():
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 3] = 0  # fully transparent black -> white
    a[0, 0] = (0, 0, 0, 255)  # opaque black stays black
    a[1, 1] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    out = read_image(a)
    assert out[2, 2] == 255 and out[0, 0] == 0
    assert 120 <= out[1, 1] <= 135
    assert read_image(a, channels=3)[2, 2].tolist() == [255, 255, 255]


def test_single_channel_3d_array():
    g = gradient()
    np.testing.assert_array_equal(read_image(g[..., None]), g)


def test_uint16_array():
    a = np.array([[0, 65535], [32768, 257]], np.uint16)
    out = read_image(a)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 255], [127, 1]]


def test_bool_array():
    a = np.array([[True, False], [False, True]])
    assert read_image(a).tolist() == [[255, 0], [0, 255]]


def test_float_array_in_unit_range():
    a = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    assert read_image(a).tolist() == [[0, 255], [128, 64]]
    assert read_image(a.astype(np.float64)).tolist() == [[0, 255], [128, 64]]


@pytest.mark.parametrize("bad", [np.array([[0.0, 1.5]]), np.array([[-0.1, 0.5]]), np.array([[np.nan, 0.5]])])
def test_float_array_out_of_range(bad):
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        read_image(bad)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 5), np.uint8), np.zeros((5, 0), np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((0, 4), np.float32)],
)
def test_zero_size_array(bad):
    with pytest.raises(ImageError, match="no pixels"):
        read_image(bad)


@pytest.mark.parametrize("bad", [np.zeros(5, np.uint8), np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3, 1), np.uint8)])
def test_wrong_array_shape(bad):
    with pytest.raises(ImageError, match="expected"):
        read_image(bad)


def test_unsupported_array_dtype():
    with pytest.raises(ImageError, match="dtype"):
        read_image(np.zeros((3, 3), np.complex64))


def test_pil_image_input_modes():
    g = gradient()
    np.testing.assert_array_equal(read_image(Image.fromarray(g).convert("RGB")), g)
    rgba = Image.new("RGBA", (4, 3), (0, 0, 0, 0))
    assert (read_image(rgba) == 255).all()


# ---------------------------------------------------------------- odd formats from disk


def test_palette_png_without_transparency(tmp_path):
    g = gradient()
    p = tmp_path / "pal.png"
    Image.fromarray(g).convert("RGB").quantize(64).save(p)
    assert Image.open(p).mode == "P"
    out = read_image(p)
    assert out.shape == g.shape
    assert np.abs(out.astype(int) - g.astype(int)).mean() < 8


def test_palette_png_with_transparency(tmp_path):
    img = Image.new("P", (6, 4), 0)
    img.putpalette([0, 0, 0, 10, 10, 10] + [0] * 762)
    px = img.load()
    for x in range(3):
        for y in range(4):
            px[x, y] = 1
    p = tmp_path / "trans.png"
    img.save(p, transparency=0)  # index 0 (black) is transparent -> white
    assert "transparency" in Image.open(p).info
    out = read_image(p)
    assert (out[:, 3:] == 255).all()
    assert (out[:, :3] == 10).all()


def test_rgba_png_composited_on_white(tmp_path):
    a = np.zeros((4, 6, 4), np.uint8)
    a[:, :3] = (0, 0, 0, 255)  # left half: opaque black
    p = tmp_path / "rgba.png"
    Image.fromarray(a).save(p)
    out = read_image(p)
    assert (out[:, :3] == 0).all() and (out[:, 3:] == 255).all()
    out3 = read_image(p, channels=3)
    assert out3.shape == (4, 6, 3) and (out3[:, 3:] == 255).all()


def test_gray_alpha_png(tmp_path):
    img = Image.new("LA", (4, 2), (0, 0))
    img.putpixel((0, 0), (40, 255))
    p = tmp_path / "la.png"
    img.save(p)
    out = read_image(p)
    assert out[0, 0] == 40 and out[1, 3] == 255


def test_gray_png_with_transparent_value(tmp_path):
    g = np.full((3, 4), 50, np.uint8)
    g[:, 2:] = 0
    p = tmp_path / "trns.png"
    Image.fromarray(g).save(p, transparency=0)
    out = read_image(p)
    assert (out[:, :2] == 50).all() and (out[:, 2:] == 255).all()


def test_16_bit_gray_png(tmp_path):
    a = np.array([[0, 65535, 32768], [1000, 20000, 65535]], np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    out = read_image(p)
    assert out.dtype == np.uint8
    expected = np.clip(a / 65535 * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    # Dark 16-bit images stay dark (the scale comes from the bit depth, not the content).
    dark = np.full((2, 2), 200, np.uint16)
    Image.fromarray(dark).save(p)
    assert (read_image(p) <= 1).all()
    assert read_image(p, channels=3).shape == (2, 2, 3)


def test_cmyk_jpeg(tmp_path):
    g = np.zeros((16, 24), np.uint8)
    g[:, 12:] = 255
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(g).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    out = read_image(p)
    assert out.shape == (16, 24)
    assert out[:, :8].mean() < 30 and out[:, 16:].mean() > 225  # not inverted
    assert read_image(p, channels=3).shape == (16, 24, 3)


def test_one_bit_image(tmp_path):
    g = np.zeros((5, 8), np.uint8)
    g[:, 4:] = 255
    p = tmp_path / "bw.png"
    Image.fromarray(g).convert("1").save(p)
    assert Image.open(p).mode == "1"
    out = read_image(p)
    np.testing.assert_array_equal(out, g)
    bmp = tmp_path / "bw.bmp"
    Image.fromarray(g).convert("1").save(bmp)
    np.testing.assert_array_equal(read_image(bmp), g)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP", "PPM"])
def test_gray_in_common_formats(tmp_path, fmt):
    g = gradient()
    p = tmp_path / f"g.{fmt.lower()}"
    Image.fromarray(g).save(p, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = read_image(p)
    assert out.shape == g.shape
    assert np.abs(out.astype(int) - g.astype(int)).max() <= 1


def test_exif_orientation_applied(tmp_path):
    g = np.full((20, 40), 255, np.uint8)
    g[:, :10] = 0  # dark band on the left of the stored pixels
    img = Image.fromarray(g)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    p = tmp_path / "rot.jpg"
    img.save(p, quality=95, exif=exif.tobytes())
    out = read_image(p)
    assert out.shape == (40, 20)  # height and width swapped
    assert out[:10].mean() < 40 and out[15:].mean() > 215  # stored left is displayed top
    # The same file via bytes and via an opened PIL image.
    assert read_image(p.read_bytes()).shape == (40, 20)
    assert read_image(Image.open(p)).shape == (40, 20)
    # Without the tag nothing turns.
    plain = tmp_path / "plain.jpg"
    img.save(plain, quality=95)
    assert read_image(plain).shape == (20, 40)


def test_multi_frame_gif_reads_first_frame(tmp_path):
    first = Image.fromarray(np.full((6, 8), 0, np.uint8)).convert("P")
    second = Image.fromarray(np.full((6, 8), 255, np.uint8)).convert("P")
    p = tmp_path / "anim.gif"
    first.save(p, save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(p).n_frames == 2
    out = read_image(p)
    assert out.shape == (6, 8)
    assert (out == 0).all()


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    p = tmp_path / "nope.png"
    with pytest.raises(ImageError, match="no such file") as info:
        read_image(p)
    assert str(p) in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(p)
    with pytest.raises(ImageError, match="empty"):
        read_image(b"")


def test_truncated_png(tmp_path):
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)))
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated") as info:
        read_image(p)
    assert str(p) in str(info.value)
    with pytest.raises(ImageError):
        read_image(data[:40])  # cut inside the header chunks


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    p = tmp_path / "noise.png"
    p.write_bytes(np.random.default_rng(seed).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="not an image") as info:
        read_image(p)
    assert str(p) in str(info.value)


def test_text_file_named_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, this is not a picture\n")
    with pytest.raises(ImageError, match="not an image"):
        read_image(p)


def test_errors_are_typed():
    assert issubclass(ImageTooLargeError, ImageError)
    assert issubclass(ImageError, OcrError)


def test_too_large_everywhere(tmp_path):
    g = gradient(20, 30)  # 600 pixels
    p = tmp_path / "g.png"
    Image.fromarray(g).save(p)
    for source in (p, p.read_bytes(), Image.open(p), g):
        with pytest.raises(ImageTooLargeError, match="too large"):
            read_image(source, max_pixels=599)
        assert read_image(source, max_pixels=600).shape == (20, 30)


def test_too_large_checked_before_decoding(tmp_path, monkeypatch):
    # A PNG past the limit is refused from its header, before any pixel is decoded.
    big = tmp_path / "big.png"
    Image.new("L", (1000, 800)).save(big)  # compresses to a few KB
    from PIL import ImageFile

    loaded = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        loaded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    assert read_image(big, max_pixels=800_000).shape == (800, 1000)
    assert loaded  # the spy sees decoding
    loaded.clear()
    with pytest.raises(ImageTooLargeError, match="1000x800"):
        read_image(big, max_pixels=100_000)
    assert loaded == []


# ---------------------------------------------------------------- find_images


def test_find_images(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.tif", "notes.txt", "sub/d.webp"):
        (tmp_path / name).write_bytes(b"x")
    found = find_images([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in found] == ["a.JPG", "b.png", "sub/c.tif", "sub/d.webp"]
    single = tmp_path / "notes.txt"
    assert find_images([single]) == [Path(single)]  # files are kept as given
