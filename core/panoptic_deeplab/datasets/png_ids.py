"""Reading COCO-panoptic PNGs as segment ids (``R + 256 G + 256^2 B``): a fast path of our own
for the common PNGs, OpenCV for the rest (:func:`read_segment_ids`, :func:`read_segment_runs`).

Why: PQ evaluation spends most of its time decoding PNGs, and most of that is zlib inflating
megabytes of nearly constant rows. Segment-id maps are piecewise constant, so after a fast
inflate (zlib-ng) the filtered scanlines are almost all zero: we find the few pixels where a row
changes and fill the runs between them, never touching the pixels one by one.

Handled: 8-bit grey, RGB and RGBA, not interlaced, scanline filters None, Sub and Up (OpenCV
writes Sub on every row). Anything else (Average or Paeth rows, as PIL writes on some rows,
palettes, 16 bits, interlacing) returns None and the caller decodes with OpenCV; so does a
stream that does not inflate to the expected size. The result is identical either way (tested
against OpenCV).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError, ImageError

try:  # zlib-ng inflates these streams about 15x faster than the standard zlib
    from zlib_ng.zlib_ng import decompressobj as _decompressobj
except ImportError:  # pragma: no cover - the wheel is in requirements.txt; stay correct without it
    from zlib import decompressobj as _decompressobj

_MAX_BYTES = 1 << 31  # larger images go to OpenCV, whose own pixel limit then applies


def _inflate(stream: bytes, size: int) -> bytes | None:
    """The inflated stream if it is exactly ``size`` bytes; None otherwise. Never inflates more
    than ``size + 1`` bytes, so a stream that inflates to gigabytes (a "PNG bomb") costs nothing."""
    inflater = _decompressobj()
    raw = inflater.decompress(stream, size + 1)
    return raw if len(raw) == size and inflater.eof else None


@dataclass(frozen=True)
class SegmentRuns:
    """A segment-id map as runs over its pixels in row-major order: run k has ``values[k]`` from
    pixel ``starts[k]`` up to the next start. A few thousand runs stand for a megapixel map, and
    PQ can count overlaps from the runs alone
    (:func:`..evaluation.panoptic_quality.match_image`)."""

    shape: tuple[int, int]
    starts: np.ndarray  # int64, increasing, starts[0] == 0
    values: np.ndarray  # uint32

    @classmethod
    def from_map(cls, ids: np.ndarray) -> SegmentRuns:
        flat = ids.reshape(-1)
        starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], starts]) if flat.size else starts
        return cls(tuple(ids.shape), starts, flat[starts].astype(np.uint32))

    def lengths(self) -> np.ndarray:
        return np.diff(self.starts, append=self.shape[0] * self.shape[1])

    def to_map(self) -> np.ndarray:
        return np.repeat(self.values, self.lengths()).reshape(self.shape)


_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type -> bytes per pixel at 8 bits
_NONE, _SUB, _UP = 0, 1, 2


def _chunks(data: bytes):
    """(IHDR payload, concatenated IDAT payload), or None if the layout is not plain."""
    if data[:8] != _SIGNATURE:
        return None
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IHDR":
            header = data[pos + 8 : pos + 8 + length]
        elif kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        elif kind in (b"PLTE", b"tRNS"):  # palette or transparency key: leave to OpenCV
            return None
        pos += 12 + length
    if header is None or len(header) != 13 or not idat:
        return None
    return header, b"".join(idat)


def _pack(channels: list[np.ndarray]) -> np.ndarray:
    """uint32 ids from the R, G, B channel values (grey: the value itself)."""
    ids = channels[0].astype(np.uint32)
    for c in (1, 2):
        if c < len(channels):
            ids |= channels[c].astype(np.uint32) << np.uint32(8 * c)
    return ids


def _nonzero_bytes(flat_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the nonzero bytes, found 8 bytes at a time (numpy's byte-wise
    nonzero is ~30x slower): only the words that are not zero are looked at byte by byte."""
    whole = len(flat_raw) // 8 * 8
    words = np.flatnonzero(flat_raw[:whole].view(np.uint64) != 0)
    in_words = np.take(flat_raw[:whole].reshape(-1, 8), words, axis=0).reshape(-1)
    at = np.flatnonzero(in_words != 0)
    tail = np.flatnonzero(flat_raw[whole:])
    positions = np.concatenate([words[at >> 3] * 8 + (at & 7), whole + tail])
    return positions, np.concatenate([in_words[at], flat_raw[whole:][tail]])


# The three channels' running sums travel in one int64, 21 bits each: a channel's sum within a
# row is at most 255 * width < 2**21 up to this width (wider images go to OpenCV).
_LANE = 21
MAX_WIDTH = (1 << _LANE) // 255


def _sub_rows(flat_raw, stride, width, bpp, sub_row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Sub-filtered rows as runs: ``(starts, ends, values)`` in flat pixel indices.

    In a Sub row a pixel equals its left neighbour (byte-wise, modulo 256) plus its filtered
    bytes, so it changes only where those bytes are not all zero. Per channel, the value at a
    change is the running sum, within the row, of that channel's nonzero bytes; runs are filled.
    """
    hits, values = _nonzero_bytes(flat_raw)
    row = hits // stride  # (np.divmod is 3x slower than // and a product)
    byte = hits - row * stride - 1  # -1: the filter-type byte opens each row
    keep = byte >= 0
    if not sub_row.all():
        keep &= sub_row[row]
    row, byte, values = row[keep], byte[keep], values[keep]
    pixel_in_row = byte // bpp
    channel = byte - pixel_in_row * bpp
    if bpp == 4:  # RGBA: the alpha bytes do not count
        rgb = channel < 3
        row, pixel_in_row, channel, values = row[rgb], pixel_in_row[rgb], channel[rgb], values[rgb]
    pixel = row * width + pixel_in_row  # flat pixel index of every nonzero byte (sorted)
    # Running sums of all three channels at once over the whole image (int64 wrap-around is
    # harmless: only differences are used), less the total reached before the row's first byte.
    packed = values.astype(np.int64) << (channel * _LANE)
    sums = np.cumsum(packed)
    row_first = np.concatenate([[True], row[1:] != row[:-1]])[: len(row)]  # [:0]: no bytes at all
    row_first_at = np.maximum.accumulate(np.where(row_first, np.arange(len(row)), 0))
    pixel_last = np.flatnonzero(np.concatenate([pixel[1:] != pixel[:-1], [True]])[: len(pixel)])
    changes, at = (
        pixel[pixel_last],
        row_first_at[pixel_last],
    )  # a pixel's value: after its last byte
    sums = sums[pixel_last] - (sums[at] - packed[at])
    change_ids = (
        (sums & 0xFF) | (sums >> (_LANE - 8) & 0xFF00) | (sums >> (2 * _LANE - 16) & 0xFF0000)
    )

    # Runs: each Sub row starts at 0 (the byte left of the row is 0); each change starts a new run.
    height = len(sub_row)
    starts = np.flatnonzero(sub_row) * width
    at = np.minimum(np.searchsorted(changes, starts), max(len(changes) - 1, 0))
    fresh = changes[at] != starts if len(changes) else np.ones(len(starts), bool)
    run_start = np.concatenate([starts[fresh], changes])
    run_value = np.concatenate([np.zeros(int(fresh.sum()), np.int64), change_ids])
    order = np.argsort(run_start, kind="stable")
    run_start, run_value = run_start[order], run_value[order].astype(np.uint32)
    row_end = (run_start // width + 1) * width
    run_end = np.minimum(np.append(run_start[1:], height * width), row_end)
    return run_start, run_end, run_value


def decode_segment_runs(data: bytes) -> SegmentRuns | None:
    """The segment ids of the PNG bytes ``data`` as runs, or None when the fast path does not
    apply (see the module docstring; the caller then uses OpenCV)."""
    parts = _chunks(data)
    if parts is None:
        return None
    header, stream = parts
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    bpp = _CHANNELS.get(colour)
    if depth != 8 or interlace or bpp is None or width == 0 or height == 0 or width > MAX_WIDTH:
        return None
    stride = 1 + width * bpp
    if height * stride > _MAX_BYTES:
        return None
    try:
        raw = _inflate(stream, height * stride)
    except Exception:  # noqa: BLE001 - a broken stream: OpenCV gives the error message
        return None
    if raw is None:
        return None
    flat_raw = np.frombuffer(raw, np.uint8)
    rows = flat_raw.reshape(height, stride)
    filters = rows[:, 0]
    if filters.max() > _UP:
        return None
    sub_row = filters == _SUB
    if sub_row.all():  # as OpenCV writes them: runs straight away, no per-pixel work
        starts, _, values = _sub_rows(flat_raw, stride, width, bpp, sub_row)
        return SegmentRuns((height, width), starts, values)
    grid = np.empty((height, width), np.uint32)
    if sub_row.any():
        starts, ends, values = _sub_rows(flat_raw, stride, width, bpp, sub_row)
        grid[sub_row] = np.repeat(values, ends - starts).reshape(-1, width)
    for r in np.flatnonzero(~sub_row):  # None and Up rows, top to bottom (Up needs the row above)
        pixels = rows[r, 1:].reshape(width, bpp)
        if filters[r] == _NONE:
            grid[r] = _pack([pixels[:, c] for c in range(min(bpp, 3))])
            continue
        above = grid[r - 1] if r else np.zeros(width, np.uint32)
        changed = np.flatnonzero(pixels[:, : min(bpp, 3)].any(axis=1))
        grid[r] = above
        if len(changed):
            old = above[changed]
            delta = pixels[changed]
            grid[r, changed] = _pack(
                [
                    ((old >> np.uint32(8 * c)) + delta[:, c]).astype(np.uint8)
                    for c in range(min(bpp, 3))
                ]
            )
    return SegmentRuns.from_map(grid)


def decode_segment_ids(data: bytes) -> np.ndarray | None:
    """Segment ids (uint32 [H, W]) of the PNG bytes ``data``, or None (see
    :func:`decode_segment_runs`)."""
    runs = decode_segment_runs(data)
    return None if runs is None else runs.to_map()


def read_segment_ids(path: str | os.PathLike) -> np.ndarray:
    """Segment ids (``R + 256 G + 256^2 B``, uint32 [H, W]) of a COCO-panoptic PNG. The one decoder
    of these PNGs: the readers, the review store, the data-set checks and ``pdl pq`` all use it
    (``pdl pq`` through :func:`read_segment_runs`). PNGs written by OpenCV take the fast path
    (:func:`decode_segment_runs`); others are decoded by OpenCV."""
    ids = _decode(path)
    return ids.to_map() if isinstance(ids, SegmentRuns) else ids


def read_segment_runs(path: str | os.PathLike) -> SegmentRuns:
    """:func:`read_segment_ids` as runs (what PQ matching needs; fast path: no per-pixel map)."""
    ids = _decode(path)
    return ids if isinstance(ids, SegmentRuns) else SegmentRuns.from_map(ids)


def _decode(path) -> SegmentRuns | np.ndarray:
    """Runs from the fast path, else the id map from OpenCV (each caller converts what it needs)."""
    data = _png_bytes(path)
    runs = decode_segment_runs(data)
    return runs if runs is not None else _decode_with_opencv(path, data)


def _png_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DatasetError(
            f"{path}: panoptic PNG not found; restore it or fix the file_name of its annotation"
        ) from None
    except OSError as err:
        raise DatasetError(
            f"{path}: cannot read the panoptic PNG ({err.strerror}); check its permissions"
        ) from None


def _decode_with_opencv(path, data: bytes) -> np.ndarray:
    import cv2  # here, not at the top: `pdl pq` on OpenCV-written PNGs never needs it

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: cannot decode the panoptic PNG (corrupt); regenerate it")
    if img.ndim == 2 and img.dtype == np.uint8:  # grey PNG: ids < 256
        return img.astype(np.uint32)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] < 3:
        raise DatasetError(
            f"{path}: expected an 8-bit RGB COCO-panoptic PNG, got {img.dtype} with shape "
            f"{img.shape}"
        )
    # OpenCV gives B, G, R; as R, G, B, 0 bytes a little-endian uint32 is R + 256 G + 256^2 B.
    ids = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGBA).view(np.uint32)[..., 0]
    if not np.little_endian:
        return ids.byteswap() >> np.uint32(8)
    np.bitwise_and(
        ids, np.uint32(0xFFFFFF), out=ids
    )  # in place: a new array costs more than the decode's tail
    return ids
