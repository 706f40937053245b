"""load_image: every odd file a user may have becomes an RGB uint8 array or a clear ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.errors import ImageError
from panoptic_deeplab.image_io import list_images, load_image


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(13, 21, 3), dtype=np.uint8)


def test_png_round_trip_is_exact(tmp_path, rgb):
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (13, 21, 3)
    np.testing.assert_array_equal(out, rgb)
    np.testing.assert_array_equal(load_image(path.read_bytes()), rgb)


def test_one_by_one(tmp_path):
    path = tmp_path / "dot.png"
    Image.fromarray(np.array([[[1, 2, 3]]], dtype=np.uint8)).save(path)
    np.testing.assert_array_equal(load_image(path), [[[1, 2, 3]]])


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty.jpg.*empty \(0 bytes\)"):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="nope.png: not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 10)
    with pytest.raises(ImageError, match=r"notes.png: not an image.*Convert it to PNG or JPEG"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(tmp_path, rgb, fmt):
    data = _encode(Image.fromarray(rgb), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.\w+: .*truncated or corrupt"):
        load_image(path)


def test_sixteen_bit_grayscale_png_is_scaled(tmp_path):
    values = np.array([[0, 257, 65535], [32768, 1000, 65279]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    out = load_image(path)
    expected = np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert out.shape == (2, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_sixteen_bit_rgb_png_keeps_the_high_byte(tmp_path):
    rng = np.random.default_rng(1)
    bgr16 = rng.integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
    path = tmp_path / "deep_rgb.png"
    assert cv2.imwrite(str(path), bgr16)
    out = load_image(path)
    rgb16 = bgr16[..., ::-1]
    # Pillow decodes 16-bit RGB by keeping the most significant byte (at most 1 below rounding).
    np.testing.assert_array_equal(out, (rgb16 >> 8).astype(np.uint8))


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    out = load_image(path)
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    rgba[1, 0] = (0, 0, 0, 128)  # half: black over white
    rgba[1, 1] = (200, 100, 50, 255)
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    out = load_image(path)
    np.testing.assert_array_equal(out[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))
    assert np.all(np.abs(out[1, 0].astype(int) - 127) <= 1)
    np.testing.assert_array_equal(out[1, 1], (200, 100, 50))


def test_cmyk_jpeg(tmp_path):
    flat = np.zeros((16, 16, 3), dtype=np.uint8)
    flat[:, :8] = (200, 30, 40)
    flat[:, 8:] = (20, 180, 90)
    path = tmp_path / "print.jpg"
    Image.fromarray(flat).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - flat).mean() < 8


def test_exif_rotation_is_applied(tmp_path):
    stored = np.zeros((4, 6, 3), dtype=np.uint8)
    stored[0, 0] = (255, 0, 0)  # a marker in the stored top-left corner
    stored[..., 2] = np.arange(6, dtype=np.uint8)[None, :] * 40
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.png"
    Image.fromarray(stored).save(path, exif=exif)
    out = load_image(path)
    assert out.shape == (6, 4, 3)
    np.testing.assert_array_equal(out, np.rot90(stored, k=-1))
    # The stored top-left corner is now the displayed top-right corner.
    np.testing.assert_array_equal(out[0, -1], (255, 0, 0))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) data chunk."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(20000, 20000), (12000, 9000)])
def test_decompression_bomb_is_refused_from_the_header(tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(*size))
    assert path.stat().st_size < 1000
    with pytest.raises(ImageError, match=r"bomb.png: .*(over the limit|decompression bomb)"):
        load_image(path)


def test_jpeg_bomb_header_reports_limit(tmp_path, rgb):
    data = bytearray(_encode(Image.fromarray(rgb), "JPEG"))
    sof = data.index(
        b"\xff\xc0"
    )  # baseline frame header: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 10000, 10000)
    path = tmp_path / "huge.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(
        ImageError,
        match=r"huge.jpg: 10000x10000 = 100,000,000 pixels is over the limit of 1,000,000",
    ):
        load_image(path, max_pixels=1_000_000)


def test_max_pixels_boundary(tmp_path, rgb):
    path = tmp_path / "small.png"
    Image.fromarray(rgb).save(path)
    assert load_image(path, max_pixels=13 * 21).shape == (13, 21, 3)
    with pytest.raises(ImageError, match="over the limit of 272"):
        load_image(path, max_pixels=13 * 21 - 1)


def test_palette_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (5, 3), c).convert("P") for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = load_image(path)
    assert out.shape == (3, 5, 3)
    np.testing.assert_array_equal(out[0, 0], (255, 0, 0))


def test_list_images(tmp_path, rgb):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="no image files"):
        list_images(empty)
