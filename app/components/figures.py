"""Plotly figures for images with per-pixel hover, clickable pixels, markers and arrows.

Plotly's image traces return no click/selection events in Streamlit (streamlit#8760), and large
per-pixel customdata is slow, so each figure carries one invisible marker grid (sub-sampled on big
images) that gives both the hover text and the clicked pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

GRID_NAME = "pixels"  # the trace whose selected points are pixels
MAX_GRID_POINTS = 8000  # SVG stays responsive below this
MAX_ARROWS = 400
CLOSE_UP_RADIUS = 16  # the close-up shows (2 * 16 + 1)^2 pixels, each one clickable

# (ys, xs) of the grid points -> (customdata [n, k], hovertemplate using %{customdata[i]})
HoverFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, str]]


def grid_step(height: int, width: int, max_points: int = MAX_GRID_POINTS) -> int:
    return max(1, math.ceil(math.sqrt(height * width / max_points)))


def image_figure(
    rgb: np.ndarray,
    hover: HoverFn | None = None,
    *,
    title: str = "",
    height: int | None = None,
    origin: tuple[int, int] = (0, 0),
) -> go.Figure:
    """An RGB image (uint8 [H, W, 3]) in image coordinates, with an invisible hover/click grid.
    ``origin``: the (y, x) of ``rgb``'s top-left pixel when it is a crop of a larger image."""
    h, w = rgb.shape[:2]
    oy, ox = origin
    fig = go.Figure(go.Image(z=rgb, x0=ox, y0=oy, hoverinfo="skip", name="image"))
    step = grid_step(h, w)
    ys, xs = np.mgrid[oy : oy + h : step, ox : ox + w : step]
    ys, xs = ys.ravel(), xs.ravel()
    if hover is not None:
        customdata, template = hover(ys, xs)
        template = "x=%{x} y=%{y}<br>" + template + "<extra></extra>"
    else:
        customdata, template = None, "x=%{x} y=%{y}<extra></extra>"
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            name=GRID_NAME,
            customdata=customdata,
            hovertemplate=template,
            marker=dict(size=max(6, step * 2), opacity=0, color="white"),
            showlegend=False,
            selected=dict(marker=dict(opacity=0)),
            unselected=dict(marker=dict(opacity=0)),
        )
    )
    fig.update_xaxes(visible=False, range=[ox - 0.5, ox + w - 0.5])
    fig.update_yaxes(visible=False, range=[oy + h - 0.5, oy - 0.5], scaleanchor="x")
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=14)) if title else None,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        height=height or int(np.clip(760 * h / w, 260, 720)),
        clickmode="event+select",
        dragmode="pan",
        hovermode="closest",
        showlegend=False,
    )
    return fig


def close_up(
    rgb: np.ndarray, y: int, x: int, hover: HoverFn | None = None, radius: int = CLOSE_UP_RADIUS
) -> go.Figure:
    """The pixels around (y, x) of an image, each one a point of the click grid: on a large image
    the full view's grid is sub-sampled, and this is where any pixel can be clicked."""
    h, w = rgb.shape[:2]
    y0, x0 = max(0, y - radius), max(0, x - radius)
    crop = rgb[y0 : min(h, y + radius + 1), x0 : min(w, x + radius + 1)]
    fig = image_figure(crop, hover, origin=(y0, x0), height=240)
    add_points(fig, [y], [x], color="#ffea00", symbol="square-open", size=10, name="pixel")
    return fig


def add_points(
    fig: go.Figure,
    ys,
    xs,
    *,
    labels=None,
    color="#00e5ff",
    symbol="x",
    size=11,
    name="points",
    hover: str | None = None,
) -> None:
    """Markers (e.g. detected centers) with optional text labels next to them."""
    fig.add_trace(
        go.Scatter(
            x=list(xs),
            y=list(ys),
            mode="markers+text" if labels is not None else "markers",
            name=name,
            text=list(labels) if labels is not None else None,
            textposition="top right",
            textfont=dict(color=color, size=12),
            marker=dict(symbol=symbol, size=size, color=color, line=dict(width=1.5, color="black")),
            hovertemplate=hover or f"{name}<br>x=%{{x}} y=%{{y}}<extra></extra>",
        )
    )


def add_arrows(
    fig: go.Figure, y0, x0, y1, x1, *, color="white", width=1.2, name="arrows", head=7
) -> None:
    """Arrows from (y0, x0) to (y1, x1), drawn as one trace (segments separated by gaps)."""
    y0, x0, y1, x1 = (np.asarray(v, dtype=float).ravel() for v in (y0, x0, y1, x1))
    n = len(y0)
    if n == 0:
        return
    xs = np.stack([x0, x1, np.full(n, np.nan)], axis=1).ravel()
    ys = np.stack([y0, y1, np.full(n, np.nan)], axis=1).ravel()
    sizes = np.tile([0, head, 0], n)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            name=name,
            connectgaps=False,
            hoverinfo="skip",
            line=dict(color=color, width=width),
            marker=dict(symbol="arrow", angleref="previous", size=sizes, color=color),
        )
    )


def subsample_arrows(mask: np.ndarray, offsets: np.ndarray, max_arrows: int = MAX_ARROWS):
    """Arrow start/end points on a regular grid of the pixels in ``mask`` (offsets are (dy, dx))."""
    h, w = mask.shape
    count = int(mask.sum())
    if count == 0:
        return (np.zeros(0),) * 4
    step = max(1, math.ceil(math.sqrt(count / max_arrows)))
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    keep = mask[ys, xs]
    ys, xs = ys[keep], xs[keep]
    dy, dx = offsets[ys, xs, 0], offsets[ys, xs, 1]
    return ys, xs, ys + dy, xs + dx


def selected_pixel(event, shape: tuple[int, int]) -> tuple[int, int] | None:
    """The (y, x) of the first grid point selected in a ``st.plotly_chart(on_select=...)`` event."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        x, y = point.get("x"), point.get("y")
        if x is None or y is None:
            continue
        y, x = int(round(float(y))), int(round(float(x)))
        if 0 <= y < shape[0] and 0 <= x < shape[1]:
            return y, x
    return None


def bar_chart(
    names, values, *, title: str, colors=None, yaxis: str = "", height: int = 320
) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=list(values),
            marker_color=colors,
            hovertemplate="%{x}: %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=14)),
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis_title=yaxis,
    )
    return fig


def confusion_figure(
    matrix: np.ndarray, names, *, normalize: bool = True, height: int = 520
) -> go.Figure:
    """Rows: ground truth, columns: prediction (stated on the axes so nobody reads it inverted)."""
    m = np.asarray(matrix, dtype=float)
    z = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(names),
            y=list(names),
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalize else None,
            customdata=m,
            hovertemplate="GT %{y} -> predicted %{x}<br>%{z:.3f} (%{customdata:.0f} px)"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="ground truth")
    fig.update_xaxes(title="prediction", side="bottom")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig
