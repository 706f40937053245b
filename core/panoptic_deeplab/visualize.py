"""Pictures of predictions and targets: colour maps, instance colours, the offset colour wheel,
heatmap overlays and alpha blending. NumPy/OpenCV only, no UI (the app and ``pdl predict`` use it).

Conventions: images are uint8 RGB ``[H, W, 3]``; panoptic maps are ``class * label_divisor +
instance`` with void as ``ignore_label * label_divisor``; offsets are ``(dy, dx)`` pointing from a
pixel to its instance center.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

VOID_COLOR = (0, 0, 0)


def color_lut(colors, ignore_label: int, ignore_color=VOID_COLOR) -> np.ndarray:
    """A 256+ entry lookup table: ``lut[class] = colors[class]``,
    ``lut[ignore_label] = ignore_color``, any other id black."""
    size = max(256, len(colors), ignore_label + 1)
    lut = np.zeros((size, 3), dtype=np.uint8)
    lut[: len(colors)] = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if 0 <= ignore_label < size:
        lut[ignore_label] = ignore_color
    return lut


def semantic_to_color(
    semantic: np.ndarray, colors, ignore_label: int = 255, ignore_color=VOID_COLOR
) -> np.ndarray:
    """Colour a semantic label map ``[H, W]`` with the data set's class colours
    (``spec.colors``)."""
    lut = color_lut(colors, ignore_label, ignore_color)
    labels = np.asarray(semantic).astype(np.int64)
    labels = np.where(
        (labels >= 0) & (labels < len(lut)), labels, ignore_label if ignore_label < len(lut) else 0
    )
    return lut[labels]


def instance_color(base_rgb, instance: int, max_shift: int = 60) -> tuple[int, int, int]:
    """A stable colour for instance ``instance`` of a class: the class colour shifted by a
    pseudo-random amount derived from the instance number (the same instance always gets the
    same colour, neighbouring instances differ). Instance 0 (stuff, crowd) keeps the class
    colour."""
    if instance == 0:
        return tuple(int(c) for c in base_rgb)
    # Knuth's multiplicative hash spreads consecutive ids over the shift cube.
    h = (int(instance) * 2654435761) & 0xFFFFFFFF
    shifts = [((h >> s) & 0xFF) / 255.0 * 2 * max_shift - max_shift for s in (0, 8, 16)]
    return tuple(int(np.clip(c + d, 0, 255)) for c, d in zip(base_rgb, shifts))


def distinct_colors(n: int, saturation: float = 0.75, value: float = 0.95) -> np.ndarray:
    """``n`` well separated colours (golden-ratio hue steps), uint8 ``[n, 3]``; for instance
    maps."""
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    return np.array(
        [[round(c * 255) for c in colorsys.hsv_to_rgb(h, saturation, value)] for h in hues],
        dtype=np.uint8,
    ).reshape(n, 3)


def instance_map_to_color(instance_map: np.ndarray, background=VOID_COLOR) -> np.ndarray:
    """Colour an instance-id map ``[H, W]`` (0 = no instance) with distinct colours per id."""
    ids = np.asarray(instance_map).astype(np.int64)
    out = np.zeros((*ids.shape, 3), dtype=np.uint8)
    out[:] = background
    unique = np.unique(ids[ids > 0])
    palette = distinct_colors(len(unique))
    for color, value in zip(palette, unique):
        out[ids == value] = color
    return out


def panoptic_to_color(
    panoptic: np.ndarray,
    colors,
    *,
    label_divisor: int,
    ignore_label: int = 255,
    ignore_color=VOID_COLOR,
    max_shift: int = 60,
) -> np.ndarray:
    """Colour a panoptic map: stuff (instance 0) in its class colour, each thing instance in a
    shifted variant of its class colour (``instance_color``), void and unknown classes in
    ``ignore_color``."""
    panoptic = np.asarray(panoptic).astype(np.int64)
    out = np.zeros((*panoptic.shape, 3), dtype=np.uint8)
    out[:] = ignore_color
    for segment in np.unique(panoptic):
        cls, inst = divmod(int(segment), label_divisor)
        if cls == ignore_label or cls < 0 or cls >= len(colors):
            continue
        out[panoptic == segment] = instance_color(colors[cls], inst, max_shift)
    return out


def segment_boundaries(label_map: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boolean ``[H, W]``: pixels whose 4-neighbourhood holds another label (segment outlines)."""
    labels = np.asarray(label_map)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    if thickness > 1:
        kernel = np.ones((thickness, thickness), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel) > 0
    return edge


def blend(
    image: np.ndarray, overlay: np.ndarray, alpha: float = 0.5, mask: np.ndarray | None = None
) -> np.ndarray:
    """``(1 - alpha) * image + alpha * overlay`` (rounded), only where ``mask`` is true if given."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    image = _as_rgb_uint8(image)
    overlay = _as_rgb_uint8(overlay)
    if image.shape != overlay.shape:
        raise ValueError(f"image {image.shape} and overlay {overlay.shape} differ in size")
    mixed = cv2.addWeighted(image, 1.0 - alpha, overlay, alpha, 0.0)
    if mask is None:
        return mixed
    return np.where(np.asarray(mask, dtype=bool)[..., None], mixed, image)


def panoptic_overlay(
    image: np.ndarray,
    panoptic: np.ndarray,
    colors,
    *,
    label_divisor: int,
    ignore_label: int = 255,
    alpha: float = 0.5,
    outline: bool = True,
) -> np.ndarray:
    """The image with the coloured panoptic map blended on top and white segment outlines."""
    colored = panoptic_to_color(
        panoptic, colors, label_divisor=label_divisor, ignore_label=ignore_label
    )
    out = blend(image, colored, alpha)
    if outline:
        out[segment_boundaries(panoptic)] = (255, 255, 255)
    return out


def heatmap_to_color(
    heatmap: np.ndarray,
    vmin: float = 0.0,
    vmax: float | None = None,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """Colour a scalar map ``[H, W]`` (e.g. the center heatmap) with an OpenCV colormap, RGB out.
    Values are clipped to ``[vmin, vmax]``; ``vmax=None`` uses the map's maximum (1 if it is
    <= vmin)."""
    values = np.asarray(heatmap, dtype=np.float32)
    if values.ndim == 3:
        values = values[..., 0]
    top = float(values.max(initial=vmin)) if vmax is None else float(vmax)
    if top <= vmin:
        top = vmin + 1.0
    scaled = np.clip((values - vmin) / (top - vmin), 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(scaled * 255).astype(np.uint8), colormap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def offsets_to_color(
    offsets: np.ndarray, max_magnitude: float | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Colour an offset map ``[H, W, 2]`` (dy, dx) like optical flow: the hue gives the direction
    (see ``offset_color_wheel``), the saturation the length relative to ``max_magnitude`` (default:
    the largest length in the map), white = no offset. Pixels outside ``mask`` are black."""
    offsets = np.asarray(offsets, dtype=np.float32)
    dy, dx = offsets[..., 0], offsets[..., 1]
    magnitude = np.hypot(dy, dx)
    if max_magnitude is None:
        valid = magnitude if mask is None else magnitude[np.asarray(mask, dtype=bool)]
        max_magnitude = float(valid.max(initial=0.0))
    max_magnitude = max(float(max_magnitude), 1e-6)
    # Hue: angle of (dx, dy) in image coordinates (x right, y down), 0 = pointing right,
    # OpenCV hue 0..180.
    angle = (np.degrees(np.arctan2(dy, dx)) + 360.0) % 360.0
    hsv = np.empty((*dy.shape, 3), dtype=np.uint8)
    hsv[..., 0] = np.round(angle / 2.0).astype(np.int32) % 180
    hsv[..., 1] = np.round(np.clip(magnitude / max_magnitude, 0.0, 1.0) * 255).astype(np.uint8)
    hsv[..., 2] = 255
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mask is not None:
        rgb[~np.asarray(mask, dtype=bool)] = 0
    return rgb


def offset_color_wheel(size: int = 129) -> np.ndarray:
    """The legend of ``offsets_to_color``: a ``size x size`` disc whose pixel at ``(y, x)`` has the
    colour of the offset from the disc's center to that pixel (radius = ``max_magnitude``);
    outside the disc is white."""
    if size < 3:
        raise ValueError(f"size must be >= 3, got {size}")
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    offsets = np.stack([yy - c, xx - c], axis=-1)
    wheel = offsets_to_color(offsets, max_magnitude=c)
    outside = np.hypot(yy - c, xx - c) > c
    wheel[outside] = 255
    return wheel


def draw_centers(image: np.ndarray, points, color=(255, 255, 255), radius: int = 3) -> np.ndarray:
    """A copy of ``image`` with a filled circle (black rim) at each ``(y, x)`` point."""
    out = _as_rgb_uint8(image).copy()
    for y, x in np.asarray(points, dtype=np.int64).reshape(-1, 2):
        cv2.circle(out, (int(x), int(y)), radius + 1, (0, 0, 0), -1, lineType=cv2.LINE_AA)
        cv2.circle(
            out, (int(x), int(y)), radius, tuple(int(v) for v in color), -1, lineType=cv2.LINE_AA
        )
    return out


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)
