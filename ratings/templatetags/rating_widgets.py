"""The site's inline controls for one item: the half-star rating widget and the hide / watchlist buttons.

Each renders a small form that works as a plain POST without JavaScript and,
with htmx, swaps itself in place (the views answer an htmx request with the
same partial). Use ``{% load rating_widgets %}`` and
``{% rating_widget item score %}`` / ``{% item_actions item hidden=... watchlisted=... %}``;
``item`` is anything with ``pk`` and ``title`` (an Item or a list's ItemCard).
"""

from __future__ import annotations

from typing import Any

from django import template

from ratings.scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

register = template.Library()

#: Every score a person can give, as the widget's radio values ("0.5" ... "5.0").
HALF_STAR_VALUES: list[float] = [
    MIN_SCORE + SCORE_STEP * k for k in range(round((MAX_SCORE - MIN_SCORE) / SCORE_STEP) + 1)
]


def rating_widget_context(
    context: template.Context | dict[str, Any], item: Any, score: float | None, status: str = ""
) -> dict[str, Any]:
    """What ``ratings/_rate.html`` needs (also used by the views that answer htmx posts)."""
    score = None if score in ("", None) else float(score)  # "" from a template's missing rating
    return {
        "item_id": item.pk,
        "title": getattr(item, "title", str(item)),
        "score": score,
        "stars": [
            {
                "value": f"{value:.1f}",
                "checked": score is not None and abs(value - score) < 1e-9,
                "left": k % 2 == 0,
            }
            for k, value in enumerate(HALF_STAR_VALUES)
        ],
        "status": status,
        "user": context.get("user"),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("ratings/_rate.html", takes_context=True)
def rating_widget(context: template.Context, item: Any, score: float | None = None) -> dict[str, Any]:
    """Your rating of ``item`` as half stars you can click or set with the arrow keys."""
    return rating_widget_context(context, item, score)


def item_actions_context(
    context: template.Context | dict[str, Any],
    item: Any,
    *,
    hidden: bool,
    watchlisted: bool,
    status: str = "",
) -> dict[str, Any]:
    return {
        "item_id": item.pk,
        "title": getattr(item, "title", str(item)),
        "hidden": hidden,
        "watchlisted": watchlisted,
        "status": status,
        "user": context.get("user"),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("ratings/_item_actions.html", takes_context=True)
def item_actions(
    context: template.Context, item: Any, hidden: bool = False, watchlisted: bool = False
) -> dict[str, Any]:
    """ "Watchlist" and "Not interested" toggles for ``item``."""
    return item_actions_context(context, item, hidden=hidden, watchlisted=watchlisted)


@register.filter
def stars(score: float | None) -> str:
    """``4.5`` -> "★★★★½" (text stars for lists; the widget is for input)."""
    if score is None:
        return ""
    halves = round(score * 2)
    return "★" * (halves // 2) + ("½" if halves % 2 else "")


@register.filter
def hue(item_id: int) -> int:
    """A stable colour (0-359) per item for its card's accent stripe (golden-angle spacing)."""
    return int(item_id) * 137 % 360
