"""The fast segment-id PNG decoder equals OpenCV on every PNG it accepts, and declines the rest."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.datasets.coco_panoptic import read_segment_ids
from panoptic_deeplab.datasets.png_ids import MAX_WIDTH, decode_segment_ids
from panoptic_deeplab.errors import ImageError


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def encode_png(pixels: np.ndarray, filters: list[int]) -> bytes:
    """A PNG of uint8 ``pixels`` [H, W] or [H, W, C] with the given scanline filter per row."""
    h, w = pixels.shape[:2]
    bpp = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour = {1: 0, 3: 2, 4: 6}[bpp]
    rows = pixels.reshape(h, w * bpp).astype(np.int64)
    out = []
    for r in range(h):
        x = rows[r]
        up = rows[r - 1] if r else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        predicted = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: _paeth(left, up, upleft)}[
            filters[r]
        ]
        out.append(bytes([filters[r]]) + ((x - predicted) % 256).astype(np.uint8).tobytes())
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(out)))
        + _chunk(b"IEND", b"")
    )


def segment_map(rng, h=37, w=53, segments=12) -> np.ndarray:
    """Random rectangles of random 24-bit ids on a 0 background (as RGB bytes)."""
    ids = np.zeros((h, w), np.uint32)
    for _ in range(segments):
        y, x = rng.integers(0, h), rng.integers(0, w)
        ids[y : y + rng.integers(1, h), x : x + rng.integers(1, w)] = rng.integers(1, 1 << 24)
    return ids


def to_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_none_sub_up_rows_in_any_mix_decode_exactly(seed):
    rng = np.random.default_rng(seed)
    ids = segment_map(rng)
    filters = rng.integers(0, 3, size=ids.shape[0]).tolist()
    assert np.array_equal(decode_segment_ids(encode_png(to_rgb(ids), filters)), ids)


@pytest.mark.parametrize("only", [0, 1, 2])
def test_one_filter_on_every_row(only):
    ids = segment_map(np.random.default_rng(10 + only))
    assert np.array_equal(decode_segment_ids(encode_png(to_rgb(ids), [only] * ids.shape[0])), ids)


def test_rgba_uses_rgb_and_grey_is_the_value():
    rng = np.random.default_rng(3)
    ids = segment_map(rng)
    rgba = np.concatenate(
        [to_rgb(ids), rng.integers(0, 256, ids.shape + (1,), dtype=np.uint8)], axis=-1
    )
    filters = rng.integers(0, 3, size=ids.shape[0]).tolist()
    assert np.array_equal(decode_segment_ids(encode_png(rgba, filters)), ids)
    grey = (ids % 256).astype(np.uint8)
    assert np.array_equal(decode_segment_ids(encode_png(grey, filters)), grey.astype(np.uint32))


def test_dense_noise_and_single_pixel_images():
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 1 << 24, size=(9, 31), dtype=np.uint32)
    assert np.array_equal(decode_segment_ids(encode_png(to_rgb(noise), [1, 2, 0] * 3)), noise)
    one = np.array([[0x123456]], np.uint32)
    for f in (0, 1, 2):
        assert np.array_equal(decode_segment_ids(encode_png(to_rgb(one), [f])), one)


@pytest.mark.parametrize("filters", [[1, 1, 1], [1, 2, 0], [2, 2, 2]])
def test_maps_without_a_nonzero_pixel_byte_decode(filters):
    """All void (only the filter bytes), and RGBA whose only nonzero bytes are alpha."""
    void = np.zeros((3, 6), np.uint32)
    assert np.array_equal(decode_segment_ids(encode_png(to_rgb(void), filters)), void)
    opaque = np.concatenate([to_rgb(void), np.full((3, 6, 1), 255, np.uint8)], axis=-1)
    assert np.array_equal(decode_segment_ids(encode_png(opaque, filters)), void)


def test_rows_of_the_widest_handled_size_keep_every_channel_exact():
    """Channel sums share one int64 in 21-bit lanes: at the widest accepted row, dense 0xFF bytes
    (the largest sums) must not spill into the next channel; one pixel wider goes to OpenCV."""
    width = MAX_WIDTH
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 1 << 24, size=(2, width), dtype=np.uint32)
    ids[1] = 0xFFFFFF  # Sub bytes of a constant row: one 0xFF per channel then zeros; noise above
    assert np.array_equal(decode_segment_ids(encode_png(to_rgb(ids), [1, 1])), ids)
    wider = np.zeros((1, width + 1), np.uint32)
    assert decode_segment_ids(encode_png(to_rgb(wider), [1])) is None


@pytest.mark.parametrize("paeth_or_average", [3, 4])
def test_average_and_paeth_rows_are_left_to_opencv(tmp_path, paeth_or_average):
    ids = segment_map(np.random.default_rng(5))
    filters = [1] * ids.shape[0]
    filters[7] = paeth_or_average
    data = encode_png(to_rgb(ids), filters)
    assert decode_segment_ids(data) is None
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert np.array_equal(read_segment_ids(path), ids)  # OpenCV fallback, same ids


def test_opencv_and_pil_written_files_read_the_same(tmp_path):
    rng = np.random.default_rng(6)
    ids = segment_map(rng, 120, 250, 30)
    cv2.imwrite(str(tmp_path / "cv.png"), to_rgb(ids)[..., ::-1])
    Image.fromarray(to_rgb(ids)).save(tmp_path / "pil.png")
    assert (
        decode_segment_ids((tmp_path / "cv.png").read_bytes()) is not None
    )  # OpenCV writes Sub rows
    for name in ("cv.png", "pil.png"):
        assert np.array_equal(read_segment_ids(tmp_path / name), ids), name


def test_broken_streams_are_declined_and_reported(tmp_path):
    ids = segment_map(np.random.default_rng(7))
    data = encode_png(to_rgb(ids), [1] * ids.shape[0])
    assert decode_segment_ids(data[:-40]) is None  # IDAT cut short
    assert decode_segment_ids(b"not a png at all") is None
    bad = bytearray(data)
    bad[60] ^= 0xFF  # inside the deflate stream: inflate fails or the size or checksum is wrong
    assert decode_segment_ids(bytes(bad)) is None
    path = tmp_path / "bad.png"
    path.write_bytes(data[:-40])
    with pytest.raises(ImageError, match="bad.png"):
        read_segment_ids(path)


def test_sixteen_bit_and_palette_pngs_are_left_to_opencv():
    grey16 = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000).save(grey16, format="PNG")
    assert decode_segment_ids(grey16.getvalue()) is None
    palette = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).convert("P").save(
        palette, format="PNG"
    )
    assert decode_segment_ids(palette.getvalue()) is None


def test_a_stream_that_inflates_far_past_the_image_is_not_inflated():
    """A 'PNG bomb': the header says 4x4, the stream holds 200 MB of zeros. The fast path stops
    after the 61 bytes the image needs."""
    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    bomb = zlib.compress(b"\0" * (200 << 20), 9)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", bomb)
        + _chunk(b"IEND", b"")
    )
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert decode_segment_ids(data) is None
    assert (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 << 10
    )  # KiB: far below 200 MB
