"""Inline SVG for the item page: the histogram of an item's ratings (no chart library)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

WIDTH, HEIGHT, AXIS = 300, 120, 16


@register.inclusion_tag("catalog/_histogram.svg")
def score_histogram(counts: list[tuple[float, int]], mine: float | None = None) -> dict[str, Any]:
    """Bars of how many ratings gave each half star; the viewer's own score highlighted.

    Bar heights are proportional to the counts (the tallest bar fills the plot); whole
    stars are labelled under the axis.
    """
    mine = None if mine in ("", None) else float(mine)  # "" from a template's missing rating
    tallest = max((n for _, n in counts), default=0) or 1
    slot = WIDTH / max(len(counts), 1)
    bars = []
    for k, (score, n) in enumerate(counts):
        height = (HEIGHT - AXIS - 14) * n / tallest
        bars.append(
            {
                "x": round(k * slot + 2, 1),
                "y": round(HEIGHT - AXIS - height, 1),
                "width": round(slot - 4, 1),
                "height": round(height, 1),
                "score": score,
                "count": n,
                "label_x": round(k * slot + slot / 2, 1),
                "whole": float(score).is_integer(),
                "mine": mine is not None and abs(mine - score) < 1e-9,
            }
        )
    total = sum(n for _, n in counts)
    return {"bars": bars, "width": WIDTH, "height": HEIGHT, "axis_y": HEIGHT - AXIS, "total": total}
