"""Inline SVG charts: ``{% line_chart %}`` and ``{% bar_chart %}``, drawn by our own templates.

The tags work out the geometry here (scales, "nice" axis ticks, positions, which
labels fit) and render ``dashboard/_line_chart.html`` / ``dashboard/_bar_chart.html``,
which emit plain SVG: no JavaScript chart library, nothing fetched. A chart scales
with its container through its ``viewBox``. Every mark carries a ``<title>`` (the
browser's tooltip and what a screen reader reads), and the whole chart an
``aria-label`` summing it up.

Coordinates are formatted here as strings with a dot, so no locale setting can
turn ``12.5`` into ``12,5`` inside an SVG attribute.

    {% load charts %}
    {% line_chart points title="RMSE" caption="lower is better" decimals=4 %}
    {% bar_chart days title="Ratings per day" integer=True %}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import template

register = template.Library()

#: The drawing's own units (its ``viewBox``); the page scales it to its box.
WIDTH, HEIGHT = 440, 220
#: Room for the axes' labels around the plot area.
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 18, 40
#: Labels on the x axis before some are skipped (they would overlap).
MAX_X_LABELS = {"line": 7, "bar": 6}


@dataclass(frozen=True, slots=True)
class ChartDatum:
    """One point of a line chart or one bar of a bar chart."""

    label: str  # on the x axis: "#12", "Mar 3", "4.5"
    value: float
    title: str = ""  # the mark's tooltip; the label and value when empty
    highlight: bool = False  # drawn in the accent colour (the live version)
    tag: str = ""  # a word written above the mark ("live")


def nice_ticks(low: float, high: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Evenly spaced round axis values covering ``[low, high]``: steps of 1, 2, 2.5 or 5 × 10^k.

    A flat range is widened so it still has an axis; ``integer`` keeps steps whole
    (counts never get a tick at 0.5).
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"axis range must be finite, got {low}..{high}")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = (low - pad, high + pad) if low != 0 else (0.0, pad)
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step * (1 - 1e-9))
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    n = round((stop - start) / step)
    return [round(start + i * step, 12) for i in range(n + 1)]


def _tick_decimals(ticks: Sequence[float]) -> int:
    """Enough decimals to tell neighbouring ticks apart, no more."""
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0])
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10**decimals) != step * 10**decimals:  # 2.5 × 10^k needs one more digit
        decimals += 1
    return decimals


def _fmt(value: float) -> str:
    """An SVG coordinate: one decimal, always a dot."""
    return f"{value:.1f}"


def format_number(value: float, decimals: int) -> str:
    """Thousands separated, ``decimals`` after the point (labels and tooltips)."""
    return f"{value:,.{decimals}f}"


def _thinned(labels: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """At most ``limit`` labels, evenly skipped, counted back from the last one (always shown)."""
    if len(labels) <= limit:
        return labels
    every = math.ceil(len(labels) / limit)
    return labels[::-1][::every][::-1]


@dataclass(frozen=True)
class _Frame:
    """The plot area and the y scale shared by both kinds of chart."""

    y_ticks: list[float]
    decimals: int

    @property
    def plot_width(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def plot_height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        return TOP + self.plot_height * (1 - (value - low) / (high - low))

    def context(self) -> dict[str, Any]:
        tick_decimals = _tick_decimals(self.y_ticks)
        return {
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "right": _fmt(WIDTH - RIGHT),
            "top": TOP,
            "bottom": _fmt(HEIGHT - BOTTOM),
            "label_x": _fmt(LEFT - 8),
            "x_label_y": _fmt(HEIGHT - BOTTOM + 18),
            "y_ticks": [
                {"y": _fmt(self.y(t)), "text": format_number(t, tick_decimals)} for t in self.y_ticks
            ],
        }


def _summary(title: str, data: Sequence[ChartDatum], decimals: int, unit: str) -> str:
    if not data:
        return f"{title}: no data"
    values = [d.value for d in data]
    what = f"{len(data)} {unit}{'' if len(data) == 1 else 's'}"
    return (
        f"{title}: {what}, from {format_number(min(values), decimals)} "
        f"to {format_number(max(values), decimals)}; last {data[-1].label} "
        f"{format_number(values[-1], decimals)}"
    )


def line_chart_context(
    data: Sequence[ChartDatum],
    *,
    title: str,
    caption: str = "",
    decimals: int = 3,
    unit: str = "point",
) -> dict[str, Any]:
    """What ``dashboard/_line_chart.html`` draws: one point per datum, in order, joined by a line."""
    context: dict[str, Any] = {
        "title": title,
        "caption": caption,
        "summary": _summary(title, data, decimals, unit),
        "empty": not data,
    }
    if not data:
        return context
    values = [d.value for d in data]
    frame = _Frame(y_ticks=nice_ticks(min(values), max(values), count=4), decimals=decimals)
    inset = 18.0  # keeps the first and last point off the axis
    span = frame.plot_width - 2 * inset
    xs = (
        [LEFT + frame.plot_width / 2]
        if len(data) == 1
        else [LEFT + inset + span * i / (len(data) - 1) for i in range(len(data))]
    )
    points: list[dict[str, Any]] = []
    for x, datum in zip(xs, data, strict=True):
        y = frame.y(datum.value)
        points.append(
            {
                "x": _fmt(x),
                "y": _fmt(y),
                "tag_y": _fmt(y - 10),
                "label": datum.label,
                "value": format_number(datum.value, decimals),
                "title": datum.title or f"{datum.label}: {format_number(datum.value, decimals)}",
                "highlight": datum.highlight,
                "tag": datum.tag,
            }
        )
    context.update(frame.context())
    context["points"] = points
    context["path"] = "M" + " L".join(f"{p['x']} {p['y']}" for p in points)
    context["x_labels"] = [
        {"x": x, "text": text}
        for x, text in _thinned([(p["x"], p["label"]) for p in points], MAX_X_LABELS["line"])
    ]
    return context


def bar_chart_context(
    data: Sequence[ChartDatum],
    *,
    title: str,
    caption: str = "",
    decimals: int = 0,
    unit: str = "bar",
    integer: bool = True,
) -> dict[str, Any]:
    """What ``dashboard/_bar_chart.html`` draws: one bar per datum from zero, in order."""
    context: dict[str, Any] = {
        "title": title,
        "caption": caption,
        "summary": _summary(title, data, decimals, unit),
        "empty": not data or all(d.value == 0 for d in data),
    }
    if not data:
        return context
    top = max(max(d.value for d in data), 0.0)
    frame = _Frame(y_ticks=nice_ticks(0.0, top, count=4, integer=integer), decimals=decimals)
    band = frame.plot_width / len(data)
    bar_width = max(1.0, band * (0.72 if len(data) <= 20 else 0.82))
    bars: list[dict[str, Any]] = []
    for i, datum in enumerate(data):
        y = frame.y(max(datum.value, 0.0))
        x = LEFT + band * i + (band - bar_width) / 2
        bars.append(
            {
                "x": _fmt(x),
                "y": _fmt(y),
                "width": _fmt(bar_width),
                "height": _fmt(HEIGHT - BOTTOM - y),
                "center": _fmt(x + bar_width / 2),
                "label": datum.label,
                "value": format_number(datum.value, decimals),
                "title": datum.title or f"{datum.label}: {format_number(datum.value, decimals)}",
                "highlight": datum.highlight,
            }
        )
    context.update(frame.context())
    context["bars"] = bars
    context["x_labels"] = [
        {"x": x, "text": text}
        for x, text in _thinned([(b["center"], b["label"]) for b in bars], MAX_X_LABELS["bar"])
    ]
    return context


@register.filter
def number(value: float | int | None, decimals: int = 0) -> str:
    """``{{ n|number }}`` 12,345 · ``{{ x|number:4 }}`` 0.9123; empty for None."""
    return "" if value is None else format_number(float(value), int(decimals))


@register.inclusion_tag("dashboard/_line_chart.html")
def line_chart(
    data: Sequence[ChartDatum], *, title: str, caption: str = "", decimals: int = 3, unit: str = "point"
) -> dict[str, Any]:
    return line_chart_context(data, title=title, caption=caption, decimals=decimals, unit=unit)


@register.inclusion_tag("dashboard/_bar_chart.html")
def bar_chart(
    data: Sequence[ChartDatum],
    *,
    title: str,
    caption: str = "",
    decimals: int = 0,
    unit: str = "bar",
    integer: bool = True,
) -> dict[str, Any]:
    return bar_chart_context(
        data, title=title, caption=caption, decimals=decimals, unit=unit, integer=integer
    )
