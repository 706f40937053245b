"""A synthetic street data set in the COCO-panoptic layout, made on any machine in seconds.

Each scene has sky, buildings with windows, trees (vegetation), a sidewalk and a road with lane
marks (stuff), a few void poles, and cars, buses and persons (things) whose size grows towards the
bottom of the image (a crude perspective). Things are drawn far to near, so near ones occlude far
ones; a placement that would hide more than 40 % of an existing instance is dropped, which keeps
instances mostly separable. Shapes are distinctive per class (cars: body, cabin with windows,
wheels; buses: long tall boxes with a row of windows; persons: narrow bodies with heads and legs).
Textures (smooth noise), a global lighting change, shadows and pixel noise make it not trivial.
Category ids equal the synthetic spec's train ids (road = 0).

Everything is deterministic for a seed: image ``k`` of a split draws from
``numpy.random.default_rng([seed, split_index, k])``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from .specs import get_dataset_spec

SPLITS = ("train", "val")
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR, BUS = range(8)
_MAX_HIDDEN_FRACTION = 0.4


def _smooth_noise(rng, h, w, cells, amplitude):
    """Low-frequency noise in [-amplitude, amplitude], [h, w, 1]."""
    grid = rng.uniform(-1, 1, (max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)[..., None] * amplitude


def _jitter(rng, color, amount=18):
    return np.clip(np.asarray(color, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


class _Canvas:
    """The image (float RGB) and the segment-id map drawn in step."""

    def __init__(self, h, w):
        self.image = np.zeros((h, w, 3), np.float32)
        self.ids = np.zeros((h, w), np.int32)
        self.h, self.w = h, w

    def paint(self, region, color, seg_id, texture=None, mask=None):
        """Paint ``region`` (a (rows, cols) slice pair), or the pixels of ``mask`` inside it, with a
        colour (+ texture, an [H, W, 1] array of the full image) and give them a segment id."""
        pix = np.asarray(color, np.float32)
        image, ids = self.image[region], self.ids[region]
        value = pix if texture is None else np.clip(pix + texture[region], 0, 255)
        if mask is None:
            image[...] = value
            if seg_id is not None:
                ids[...] = seg_id
            return
        mask = mask[region]
        image[mask] = value if texture is None else value[mask]
        if seg_id is not None:
            ids[mask] = seg_id


def _bounds(mask: np.ndarray):
    """The (rows, cols) slices of a uint8 mask's bounding box."""
    x, y, w, h = cv2.boundingRect(mask)
    return slice(y, y + h), slice(x, x + w)


def _draw_background(rng, canvas, ids):
    h, w = canvas.h, canvas.w
    horizon = int(h * rng.uniform(0.32, 0.45))
    curb = horizon + int(h * rng.uniform(0.07, 0.13))
    base_tex = _smooth_noise(rng, h, w, 24, 14) + rng.normal(0, 4, (h, w, 1)).astype(np.float32)

    # Sky: a vertical gradient.
    sky_top, sky_bottom = _jitter(rng, (60, 110, 190), 25), _jitter(rng, (170, 200, 230), 20)
    t = (np.arange(h, dtype=np.float32) / max(1, horizon))[:, None, None].clip(0, 1)
    canvas.image[:] = sky_top * (1 - t) + sky_bottom * t
    canvas.ids[:horizon] = ids[SKY]

    # Buildings: boxes of random width and height standing on the horizon, with window grids.
    x = int(rng.uniform(-0.05, 0.05) * w)
    while x < w:
        bw = int(w * rng.uniform(0.08, 0.22))
        top = int(horizon - h * rng.uniform(0.12, 0.4))
        if rng.random() < 0.15:  # a gap shows the sky
            x += bw // 2
            continue
        x0, x1 = max(0, x), min(w, x + bw)
        canvas.paint(
            (slice(max(0, top), horizon + 2), slice(x0, x1)),
            _jitter(
                rng, rng.choice([(70, 70, 70), (120, 100, 90), (150, 140, 120), (90, 90, 110)]), 25
            ),
            ids[BUILDING],
            base_tex,
        )
        win = _jitter(rng, (40, 50, 70), 20)
        step_y, step_x = rng.integers(14, 28), rng.integers(14, 30)
        for wy in range(max(0, top) + 6, horizon - 8, step_y):
            for wx in range(x0 + 5, x1 - 10, step_x):
                canvas.image[wy : wy + step_y // 2, wx : wx + step_x // 2] = win
        x += bw

    # Sidewalk band and road.
    canvas.paint(
        (slice(horizon, curb), slice(0, w)),
        _jitter(rng, (175, 160, 170), 20),
        ids[SIDEWALK],
        base_tex * 1.5,
    )
    canvas.paint(
        (slice(curb, h), slice(0, w)), _jitter(rng, (95, 90, 100), 15), ids[ROAD], base_tex
    )
    canvas.image[curb : curb + max(2, h // 200)] *= 0.7  # the curb edge
    lane_y = int(curb + (h - curb) * rng.uniform(0.35, 0.6))
    thickness = max(2, (lane_y - horizon) // 25)
    for lx in range(int(rng.uniform(0, 80)), w, 140):
        canvas.image[lane_y : lane_y + thickness, lx : lx + 70] = (225, 225, 215)

    # Trees on the sidewalk: trunk + canopy, all vegetation; some hedges along the building line.
    for _ in range(rng.integers(1, 5)):
        tx = int(rng.uniform(0, w))
        base = int(rng.uniform(horizon, curb))
        r = int(h * rng.uniform(0.05, 0.11))
        mask = np.zeros((h, w), np.uint8)
        cv2.rectangle(mask, (tx - r // 6, base - 2 * r), (tx + r // 6, base), 1, -1)
        canvas.paint(
            _bounds(mask), _jitter(rng, (90, 60, 40)), ids[VEGETATION], mask=mask.astype(bool)
        )
        mask[:] = 0
        for _ in range(4):
            cx, cy = tx + int(rng.uniform(-r, r) * 0.6), base - 2 * r - int(rng.uniform(0, r * 0.6))
            cv2.circle(mask, (cx, cy), int(r * rng.uniform(0.6, 1.0)), 1, -1)
        leaf = _smooth_noise(rng, h, w, 6, 30)
        canvas.paint(
            _bounds(mask),
            _jitter(rng, (80, 130, 40), 20),
            ids[VEGETATION],
            leaf,
            mask=mask.astype(bool),
        )
    if rng.random() < 0.6:
        hx0 = int(rng.uniform(0, w * 0.6))
        canvas.paint(
            (
                slice(horizon - int(h * 0.03), horizon + 3),
                slice(hx0, hx0 + int(w * rng.uniform(0.1, 0.4))),
            ),
            _jitter(rng, (70, 120, 45), 15),
            ids[VEGETATION],
            _smooth_noise(rng, h, w, 4, 25),
        )

    # Void: thin poles (ignored by the metrics and the losses).
    for _ in range(rng.integers(0, 3)):
        px = int(rng.uniform(0, w))
        canvas.paint(
            (slice(int(horizon - h * 0.2), int(curb + h * 0.02)), slice(px, px + max(3, w // 250))),
            _jitter(rng, (60, 60, 60), 10),
            0,
        )
    return horizon, curb


def _thing_mask(rng, cls, x, bottom, scale, w, h, color_part):
    """Draw one thing into a local mask; returns (mask [h, w] bool, parts [(mask, colour)])."""
    parts = []

    def new():
        return np.zeros((h, w), np.uint8)

    body_color = color_part
    if cls == CAR:
        cw = int(190 * scale)
        ch = int(cw * rng.uniform(0.38, 0.46))
        x0, x1, y1 = x - cw // 2, x + cw // 2, bottom
        body = new()
        cv2.rectangle(body, (x0, y1 - int(ch * 0.55)), (x1, y1 - int(ch * 0.12)), 1, -1)
        cabin = new()
        inset = int(cw * 0.18)
        pts = np.array(
            [
                [x0 + inset // 2, y1 - int(ch * 0.55)],
                [x0 + inset + cw // 10, y1 - ch],
                [x1 - inset - cw // 12, y1 - ch],
                [x1 - inset // 3, y1 - int(ch * 0.55)],
            ],
            np.int32,
        )
        cv2.fillPoly(cabin, [pts], 1)
        windows = new()
        cv2.fillPoly(
            windows,
            [
                (pts + np.array([[3, -2], [3, 3], [-3, 3], [-3, -2]]) * max(1, cw // 60)).astype(
                    np.int32
                )
            ],
            1,
        )
        wheels = new()
        r = max(2, int(ch * 0.2))
        for wx in (x0 + int(cw * 0.2), x1 - int(cw * 0.2)):
            cv2.circle(wheels, (wx, y1 - r), r, 1, -1)
        lights = new()
        cv2.rectangle(
            lights, (x0, y1 - int(ch * 0.5)), (x0 + max(2, cw // 20), y1 - int(ch * 0.38)), 1, -1
        )
        parts = [
            (body | cabin, body_color),
            (windows & cabin, (60, 80, 100)),
            (wheels, (20, 20, 20)),
            (lights, (240, 220, 150)),
        ]
    elif cls == BUS:
        bw = int(480 * scale * rng.uniform(0.85, 1.15))
        bh = int(bw * rng.uniform(0.36, 0.44))
        x0, x1, y1 = x - bw // 2, x + bw // 2, bottom
        body = new()
        cv2.rectangle(body, (x0, y1 - bh), (x1, y1 - int(bh * 0.08)), 1, -1)
        windows = new()
        n = int(rng.integers(5, 9))
        step = bw / n
        for k in range(n):
            cv2.rectangle(
                windows,
                (int(x0 + k * step + step * 0.12), y1 - int(bh * 0.9)),
                (int(x0 + (k + 1) * step - step * 0.12), y1 - int(bh * 0.55)),
                1,
                -1,
            )
        stripe = new()
        cv2.rectangle(stripe, (x0, y1 - int(bh * 0.45)), (x1, y1 - int(bh * 0.38)), 1, -1)
        wheels = new()
        r = max(2, int(bh * 0.12))
        for wx in (x0 + int(bw * 0.15), x1 - int(bw * 0.15)):
            cv2.circle(wheels, (wx, y1 - r), r, 1, -1)
        parts = [
            (body, body_color),
            (windows, (50, 70, 90)),
            (stripe, (230, 230, 230)),
            (wheels, (20, 20, 20)),
        ]
    else:  # PERSON
        ph = int(170 * scale * rng.uniform(0.85, 1.15))
        pw = max(3, int(ph * 0.28))
        y1 = bottom
        head_r = max(2, int(ph * 0.09))
        head = new()
        cv2.circle(head, (x, y1 - ph + head_r), head_r, 1, -1)
        torso = new()
        cv2.rectangle(
            torso, (x - pw // 2, y1 - ph + 2 * head_r), (x + pw // 2, y1 - int(ph * 0.45)), 1, -1
        )
        legs = new()
        lw = max(1, pw // 3)
        stride = int(rng.uniform(-0.15, 0.15) * ph)
        cv2.line(legs, (x - lw // 2, y1 - int(ph * 0.46)), (x - lw // 2 - stride // 2, y1), 1, lw)
        cv2.line(legs, (x + lw // 2, y1 - int(ph * 0.46)), (x + lw // 2 + stride // 2, y1), 1, lw)
        arms = new()
        aw = max(1, pw // 4)
        cv2.line(
            arms,
            (x - pw // 2, y1 - ph + 2 * head_r),
            (x - pw // 2 - pw // 4, y1 - int(ph * 0.5)),
            1,
            aw,
        )
        cv2.line(
            arms,
            (x + pw // 2, y1 - ph + 2 * head_r),
            (x + pw // 2 + pw // 4, y1 - int(ph * 0.5)),
            1,
            aw,
        )
        skin = _jitter(rng, (200, 160, 130), 40)
        parts = [(torso | arms, body_color), (legs, _jitter(rng, (50, 50, 80), 30)), (head, skin)]
    mask = np.zeros((h, w), bool)
    parts = [(p.astype(bool), c) for p, c in parts]
    for p, _ in parts:
        mask |= p
    return mask, parts


_PAINT = {
    CAR: [
        (180, 20, 20),
        (20, 40, 150),
        (200, 200, 200),
        (30, 30, 30),
        (220, 180, 30),
        (40, 110, 60),
    ],
    BUS: [(230, 180, 20), (200, 40, 40), (30, 90, 160), (240, 240, 240)],
    PERSON: [
        (200, 30, 60),
        (40, 40, 40),
        (30, 120, 200),
        (230, 230, 230),
        (120, 80, 160),
        (60, 140, 60),
    ],
}


def render_scene(rng: np.random.Generator, height: int = 512, width: int = 1024):
    """One scene: (RGB uint8 image, segment ids int32 [H, W], segments list of
    ``{"id", "category_id", "iscrowd"}``). Segment id 0 is void."""
    spec = get_dataset_spec("synthetic")
    canvas = _Canvas(height, width)
    stuff_ids = {c: c + 1 for c in spec.stuff_class_ids}  # one segment per stuff class
    horizon, curb = _draw_background(rng, canvas, stuff_ids)
    segments = {sid: {"id": sid, "category_id": c, "iscrowd": 0} for c, sid in stuff_ids.items()}

    # Candidate things, drawn far (small bottom y) to near; size grows with depth below the horizon.
    size_ref = width / 1024.0
    candidates = []
    for _ in range(int(rng.integers(9, 15))):
        cls = int(rng.choice([CAR, CAR, BUS, PERSON, PERSON]))
        if cls == PERSON:
            bottom = int(rng.uniform(horizon + 0.3 * (curb - horizon), height * 0.98))
        else:
            bottom = int(rng.uniform(curb + 0.05 * (height - curb), height * 1.02))
        depth = (bottom - horizon) / max(1, height - horizon)
        scale = size_ref * (0.25 + 1.25 * depth) * rng.uniform(0.8, 1.2)
        candidates.append((bottom, cls, int(rng.uniform(-0.05, 1.05) * width), scale))
    candidates.sort(key=lambda c: c[0])

    first_thing_id = max(stuff_ids.values()) + 1
    next_id = first_thing_id
    full_area: dict[int, int] = {}
    visible: dict[int, int] = {}
    ground_ids = np.array([stuff_ids[ROAD], stuff_ids[SIDEWALK]], np.int32)
    for bottom, cls, x, scale in candidates:
        # Draw in a local window that holds any shape of this scale, then clip it to the image.
        win_h, win_w = int(260 * scale) + 6, int(600 * scale) + 6
        oy, ox = bottom - win_h + 3, x - win_w // 2
        color = _jitter(rng, _PAINT[cls][rng.integers(len(_PAINT[cls]))], 20)
        mask, parts = _thing_mask(rng, cls, win_w // 2, win_h - 3, scale, win_w, win_h, color)
        y0, y1, x0, x1 = max(0, oy), min(height, oy + win_h), max(0, ox), min(width, ox + win_w)
        if y0 >= y1 or x0 >= x1:
            continue
        local = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        window = (slice(y0, y1), slice(x0, x1))
        mask = mask[local]
        area = int(mask.sum())
        if area < 64:
            continue
        covered = canvas.ids[window][mask]
        hidden = np.bincount(covered[covered >= first_thing_id], minlength=next_id)
        occluded = np.nonzero(hidden)[0]
        if any(
            visible[i] - hidden[i] < (1 - _MAX_HIDDEN_FRACTION) * full_area[i] for i in occluded
        ):
            continue
        for i in occluded:
            visible[i] -= int(hidden[i])
        # Shadow on the ground under the object.
        cols = np.nonzero(mask.any(axis=0))[0]
        half = int(len(cols) * 0.55)
        if half > 2:
            cx = x0 + int(cols.mean())
            sy0, sy1 = max(0, bottom - half // 8 - 1), min(height, bottom + half // 8 + 2)
            sx0, sx1 = max(0, cx - half - 1), min(width, cx + half + 2)
            if sy0 < sy1 and sx0 < sx1:
                shadow = np.zeros((sy1 - sy0, sx1 - sx0), np.uint8)
                cv2.ellipse(
                    shadow, (cx - sx0, bottom - sy0), (half, max(2, half // 8)), 0, 0, 360, 1, -1
                )
                shaded = shadow.astype(bool) & np.isin(canvas.ids[sy0:sy1, sx0:sx1], ground_ids)
                canvas.image[sy0:sy1, sx0:sx1][shaded] *= 0.6
        # The object, lit from above: a vertical shading ramp as texture.
        patch, ids_patch = canvas.image[window], canvas.ids[window]
        shade = np.linspace(20, -25, y1 - y0, dtype=np.float32)[:, None, None]
        shade = np.broadcast_to(shade, (y1 - y0, x1 - x0, 1))
        for part, part_color in parts:
            part = part[local]
            patch[part] = np.clip(part_color + shade[part], 0, 255)
        ids_patch[mask] = next_id
        segments[next_id] = {"id": next_id, "category_id": cls, "iscrowd": 0}
        full_area[next_id] = visible[next_id] = area
        next_id += 1

    # Lighting, colour cast, uneven illumination and sensor noise (float32, in place).
    image = canvas.image
    image *= (rng.uniform(0.7, 1.25) * rng.uniform(0.92, 1.08, 3)).astype(np.float32)
    image += np.float32(rng.uniform(-15, 15))
    image += _smooth_noise(rng, height, width, 160, 20)
    noise = np.empty((height, width, 3), np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    cv2.randn(noise, 0.0, float(rng.uniform(2, 7)))
    image += noise
    image = np.clip(image, 0, 255).astype(np.uint8)

    present = set(np.nonzero(np.bincount(canvas.ids.ravel()))[0].tolist())
    return image, canvas.ids, [s for sid, s in segments.items() if sid in present]


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1),
    ]


def _write_one(job):
    """Render and write one image + PNG; returns its JSON records."""
    out, split, split_index, k, seed, height, width = job
    rng = np.random.default_rng([seed, split_index, k])
    image, ids, segments = render_scene(rng, height, width)
    name = f"{split}_{k:06d}"
    cv2.imwrite(
        str(Path(out) / split / f"{name}.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    from .coco_panoptic import id_to_rgb

    cv2.imwrite(
        str(Path(out) / "annotations" / f"panoptic_{split}" / f"{name}.png"),
        id_to_rgb(ids)[..., ::-1],
    )
    for s in segments:
        m = ids == s["id"]
        s["area"] = int(m.sum())
        s["bbox"] = _bbox(m)
    image_record = {"id": k, "file_name": f"{name}.jpg", "height": height, "width": width}
    annotation = {"image_id": k, "file_name": f"{name}.png", "segments_info": segments}
    return image_record, annotation


def coco_categories(spec) -> list[dict]:
    return [
        {
            "id": spec.category_id(t),
            "name": spec.class_names[t],
            "isthing": int(spec.is_thing(t)),
            "color": list(spec.colors[t]),
            "supercategory": "thing" if spec.is_thing(t) else "stuff",
        }
        for t in range(spec.num_classes)
    ]


def make_synthetic_dataset(
    out: str | Path,
    num_train: int = 100,
    num_val: int = 20,
    *,
    height: int = 512,
    width: int = 1024,
    seed: int = 0,
    workers: int | None = None,
) -> Path:
    """Write the synthetic data set (splits ``train``, ``val``) under ``out``; returns ``out``."""
    out = Path(out)
    spec = get_dataset_spec("synthetic")
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    for split_index, (split, count) in enumerate(zip(SPLITS, (num_train, num_val))):
        (out / split).mkdir(parents=True, exist_ok=True)
        (out / "annotations" / f"panoptic_{split}").mkdir(parents=True, exist_ok=True)
        jobs = [(str(out), split, split_index, k, seed, height, width) for k in range(count)]
        if workers > 1 and count > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_write_one, jobs, chunksize=4))
        else:
            results = [_write_one(j) for j in jobs]
        data = {
            "info": {"description": f"synthetic street scenes, seed {seed}"},
            "images": [r[0] for r in results],
            "annotations": [r[1] for r in results],
            "categories": coco_categories(spec),
        }
        with open(out / "annotations" / f"panoptic_{split}.json", "w", encoding="utf-8") as f:
            json.dump(data, f)
    return out
