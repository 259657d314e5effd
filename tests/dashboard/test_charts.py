"""The inline SVG chart tags: one mark per datum, axes that cover the data, labels that fit."""

from __future__ import annotations

import itertools
import re

import pytest
from django.template import Context, Template

from recommender.templatetags.charts import (
    BOTTOM,
    HEIGHT,
    TOP,
    ChartDatum,
    bar_chart_context,
    line_chart_context,
    nice_ticks,
)


def render(tag: str, data: list[ChartDatum]) -> str:
    return Template("{% load charts %}" + tag).render(Context({"data": data}))


def floats(pattern: str, svg: str) -> list[float]:
    return [float(v) for v in re.findall(pattern, svg)]


def test_a_line_chart_draws_one_point_per_version_joined_in_order() -> None:
    data = [
        ChartDatum("#1", 0.95),
        ChartDatum("#4", 0.91),
        ChartDatum("#6", 0.90, highlight=True, tag="live"),
        ChartDatum("#7", 0.94),
    ]

    svg = render('{% line_chart data title="RMSE" caption="lower is better" decimals=4 %}', data)

    assert svg.count("<svg") == 1 and svg.count('<circle class="point') == 4
    assert svg.count("point--highlight") == 1 and ">live</text>" in svg
    assert floats(r'data-value="([\d.]+)"', svg) == [0.95, 0.91, 0.90, 0.94]
    assert [t for t in re.findall(r"<title>(#\d+): ", svg)] == ["#1", "#4", "#6", "#7"]
    # Left to right in the given order; lower values sit lower (SVG y grows downwards).
    xs = floats(r'<circle [^>]*cx="([\d.]+)"', svg)
    ys = floats(r'<circle [^>]*cy="([\d.]+)"', svg)
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert ys[2] == max(ys) and ys[0] == min(ys)
    assert all(TOP <= y <= HEIGHT - BOTTOM for y in ys)
    assert re.search(r'<path class="chart__line" d="M[\d.]+ [\d.]+( L[\d.]+ [\d.]+){3}"', svg)
    assert 'aria-label="RMSE: 4 points, from 0.9000 to 0.9500; last #7 0.9400"' in svg


def test_a_chart_without_data_says_so_instead_of_drawing_axes() -> None:
    line = render('{% line_chart data title="RMSE" %}', [])
    bars = render('{% bar_chart data title="Ratings per day" %}', [ChartDatum("Jan 1", 0)])

    assert "<svg" not in line and "No RMSE yet." in line
    assert "<svg" not in bars and "No data for ratings per day yet." in bars


def test_a_single_point_sits_in_the_middle_on_a_widened_axis() -> None:
    context = line_chart_context([ChartDatum("#3", 0.5)], title="NDCG@10")

    assert len(context["points"]) == 1 and context["path"].count("L") == 0
    ticks = [float(t["text"]) for t in context["y_ticks"]]
    assert ticks[0] < 0.5 < ticks[-1]


def test_a_bar_chart_draws_one_bar_per_datum_with_heights_proportional_to_values() -> None:
    data = [
        ChartDatum(f"{score / 2:g}", value)
        for score, value in zip(range(1, 11), [0, 1, 2, 0, 4, 8, 3, 0, 0, 5], strict=True)
    ]

    svg = render('{% bar_chart data title="Rating distribution" %}', data)

    assert svg.count('<rect class="bar') == 10
    heights = floats(r'<rect class="bar[^"]*" [^>]*height="([\d.]+)"', svg)
    assert heights[0] == 0 and heights[4] == pytest.approx(2 * heights[2], abs=0.11)
    assert heights[5] == pytest.approx(8 * heights[1], abs=0.2)
    # The tallest bar stays inside the plot; the axis reaches at least its value.
    tops = floats(r'<rect class="bar[^"]*" [^>]*y="([\d.]+)"', svg)
    assert min(tops) >= TOP
    assert max(float(t) for t in re.findall(r'text-anchor="end">([\d,]+)</text>', svg)) >= 8


def test_many_bars_keep_few_x_labels_and_always_the_last() -> None:
    days = [ChartDatum(f"d{n}", n % 7) for n in range(60)]

    context = bar_chart_context(days, title="Ratings per day")

    labels = [label["text"] for label in context["x_labels"]]
    assert len(context["bars"]) == 60
    assert 2 <= len(labels) <= 6 and labels[-1] == "d59"


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [
        (0, 37, True, [0, 10, 20, 30, 40]),
        (0, 3, True, [0, 1, 2, 3]),
        (0, 1, True, [0, 1]),
        (0.9, 0.94, False, [0.9, 0.92, 0.94]),
        (0, 0, True, [0, 1]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_range(
    low: float, high: float, integer: bool, expected: list[float]
) -> None:
    assert nice_ticks(low, high, count=4 if low else 5, integer=integer) == pytest.approx(expected)


@pytest.mark.parametrize(("low", "high"), [(0.0744, 0.0746), (0.31, 0.3253), (1, 2_500_000), (-3, 7)])
def test_nice_ticks_always_enclose_the_data(low: float, high: float) -> None:
    ticks = nice_ticks(low, high, count=4)
    assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 7
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_the_number_filter_separates_thousands() -> None:
    html = Template("{% load charts %}{{ n|number }} {{ x|number:4 }} [{{ none|number }}]").render(
        Context({"n": 100000, "x": 0.912345, "none": None})
    )
    assert html == "100,000 0.9123 []"
