"""Explain one pixel's vote: where its offset points and which detected center it joins.

Pure NumPy on the arrays the library already returned (offsets in (dy, dx) input pixels, centers
as (y, x)); it repeats the grouping rule of the post-processing (nearest center to p + offset(p),
first on ties) for a single pixel, to show the distances the rule compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelVote:
    y: int
    x: int
    offset: tuple[float, float]  # (dy, dx)
    vote: tuple[float, float]  # (y + dy, x + dx)
    center_index: int | None  # index into the center list; None when there are no centers
    center: tuple[int, int] | None
    distance: float | None  # from the vote to the joined center
    runner_up_index: int | None
    runner_up_distance: (
        float | None
    )  # distance to the second-nearest center (None with < 2 centers)

    @property
    def margin(self) -> float | None:
        """How much farther the runner-up is: small margins are pixels that could flip instance."""
        if self.distance is None or self.runner_up_distance is None:
            return None
        return self.runner_up_distance - self.distance


def explain_pixel(y: int, x: int, offsets: np.ndarray, centers: np.ndarray) -> PixelVote:
    """``offsets [H, W, 2]`` (dy, dx); ``centers [N, 2]`` (y, x) in the post-processing's order."""
    height, width = offsets.shape[:2]
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"pixel ({y}, {x}) is outside the {height}x{width} image")
    dy, dx = (float(v) for v in offsets[y, x])
    vote = (y + dy, x + dx)
    centers = np.asarray(centers, dtype=np.float32).reshape(-1, 2)
    if len(centers) == 0:
        return PixelVote(y, x, (dy, dx), vote, None, None, None, None, None)
    # float32 like the post-processing, so ties resolve the same way
    v = np.asarray(vote, dtype=np.float32)
    d2 = ((centers - v) ** 2).sum(axis=1)
    order = np.argsort(d2, kind="stable")  # stable: the first center wins ties, as in argmin
    best = int(order[0])
    runner = int(order[1]) if len(order) > 1 else None
    return PixelVote(
        y,
        x,
        (dy, dx),
        vote,
        best,
        (int(centers[best, 0]), int(centers[best, 1])),
        float(np.sqrt(d2[best])),
        runner,
        float(np.sqrt(d2[runner])) if runner is not None else None,
    )
