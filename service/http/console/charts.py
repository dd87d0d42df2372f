"""The dashboard's charts: server-side SVG drawn by pygal, inline in the page.

Why pygal: the console runs no JavaScript (its Content-Security-Policy allows none), and a
server-drawn SVG needs none, works without a CDN or the internet, and its text (labels,
values) is text a test and a screen reader can read. pygal is a maintained library that
draws bar and line charts from a few lines of configuration, pure Python.

What the page keeps of pygal's SVG: its drawing and its ``<style>``, which carries the
response's CSP nonce (a chart's CSS is scoped to its own id). Dropped: pygal's
``<script>`` (its tooltips' configuration, for a script the console never loads) and the
tooltip layer that script would fill, so a chart is complete without JavaScript.

Each chart is drawn twice, for a wide and a narrow screen, and the stylesheet shows one:
scaling a single drawing to a phone's width would shrink its labels below reading size.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import pygal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    background="transparent", plot_background="#ffffff", foreground="#1d2330",
    foreground_strong="#1d2330", foreground_subtle="#5d6778", opacity="0.9",
    opacity_hover="0.9", colors=("#1f5fbf", "#1d7a46", "#a5281b", "#8a5a00"),
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif',
    label_font_size=13, major_label_font_size=13, legend_font_size=14, value_font_size=12,
    title_font_size=15, no_data_font_size=18, tooltip_font_size=12)
# The drawings' widths: near the box each is shown in (a whole card, or half of one at a
# laptop's width; a phone's screen), so the SVG scales little and its text stays ~13 px.
WIDTHS = {("wide", True): 960, ("wide", False): 480, ("narrow", True): 340,
          ("narrow", False): 340}
ROW_HEIGHT = {"wide": 34, "narrow": 40}
MOST_ROWS = 12  # countries beyond the busiest are in the table below the chart


def _options(layout: str, full: bool, **options: Any) -> dict[str, Any]:
    return {"style": STYLE, "width": WIDTHS[layout, full], "js": [],
            "disable_xml_declaration": True, "legend_at_bottom": True,
            # never more columns than series: pygal then misplaces the legend, off the chart
            "legend_at_bottom_columns": 2, "truncate_legend": -1, "margin": 8,
            "truncate_label": -1, "show_y_guides": True, "print_values": False,
            "print_zeroes": False, "legend_box_size": 11, "spacing": 8 if layout == "wide" else 5,
            **options}


def _svg(chart, label: str, nonce: str) -> str:
    """The chart's SVG, without pygal's script and tooltip layer, its style nonced."""
    root = chart.render_tree()
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
            if tag == "script" or "tooltip-overlay" in child.get("class", ""):
                parent.remove(child)
            elif tag == "style":
                child.set("nonce", nonce)
            elif tag == "title" and parent is root:
                child.text = label
    root.set("role", "img")
    root.set("aria-label", label)
    return ElementTree.tostring(root, encoding="unicode")


def _figure(draw: Callable[[str], Any], label: str, nonce: str, full: bool) -> Markup:
    """Both layouts of one chart, in the markup console.css switches between; ``full``:
    the chart takes a whole card's width, not half."""
    wide, narrow = (_svg(draw(layout), label, nonce) for layout in ("wide", "narrow"))
    return Markup('<div class="chart {}"><div class="wide">{}</div><div class="narrow">{}</div>'
                  "</div>").format("full" if full else "half", Markup(wide), Markup(narrow))


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} %"


def _count_ticks(values: list[int]) -> list[int]:
    """Whole-number ticks from 0 to the largest count or just past it, one step of 1, 2
    or 5 × 10ⁿ, at most six ticks: counts have no halves (pygal's own ticks would label
    0.5, rounded to 1)."""
    top, magnitude = max([1, *values]), 1
    while True:
        for base in (1, 2, 5):
            step = base * magnitude
            if top <= 5 * step:
                return list(range(0, -(-top // step) * step + 1, step))
        magnitude *= 10


def _amount(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def timeline(series: list[dict], bucket_seconds: int, nonce: str) -> Markup:
    """Sends and approvals per bucket."""
    times = [datetime.fromisoformat(point["at"].replace("Z", "+00:00")) for point in series]
    if bucket_seconds == 60:
        labels, every = [t.strftime("%H:%M") for t in times], (10, 15)
    elif len(series) <= 24:
        labels, every = [t.strftime("%H:00") for t in times], (3, 6)
    else:
        labels, every = [t.strftime("%a %H:00") for t in times], (24, 48)

    def draw(layout: str):
        chart = pygal.Line(**_options(
            layout, True, height=300 if layout == "wide" else 280, show_dots=len(series) <= 24,
            fill=False, x_labels_major_every=every[layout == "narrow"],
            show_minor_x_labels=False, x_label_rotation=0, min_scale=2, max_scale=6,
            value_formatter=lambda v: f"{v:.0f}", include_x_axis=True,
            legend_at_bottom_columns=3))  # one row: pygal leaves no room for a second here
        chart.x_labels = labels
        chart.y_labels = _count_ticks([max(p["sent"], p["rejected"]) for p in series])
        chart.add("Sends", [point["sent"] for point in series])
        chart.add("Approvals", [point["approved"] for point in series])
        chart.add("Wrong codes", [point["rejected"] for point in series])
        return chart

    return _figure(draw, "Sends, approvals and wrong codes over time", nonce, True)


def by_name(rows: list[dict], name: str, label: str, nonce: str) -> Markup:
    """Sends and approvals of each service or country (the busiest first)."""
    rows = rows[:MOST_ROWS][::-1]  # pygal draws a horizontal bar chart's first row lowest

    def draw(layout: str):
        chart = pygal.HorizontalBar(**_options(
            layout, False, height=120 + ROW_HEIGHT[layout] * 2 * len(rows), print_values=True,
            value_formatter=lambda v: f"{v:.0f}", print_zeroes=False, margin_right=16))
        chart.x_labels = [row[name] for row in rows]
        chart.y_labels = _count_ticks([row["sent"] for row in rows])
        chart.add("Sends", [row["sent"] for row in rows])
        chart.add("Approvals", [row["approved"] for row in rows])
        return chart

    return _figure(draw, label, nonce, False)


def failure_rates(rows: list[dict], nonce: str) -> Markup:
    """The delivery failure rate of each country with final delivery reports."""
    rows = [row for row in rows if row["delivery_failure_rate"] is not None][:MOST_ROWS][::-1]

    def draw(layout: str):
        chart = pygal.HorizontalBar(**_options(
            layout, False, height=90 + ROW_HEIGHT[layout] * len(rows), print_values=True,
            range=(0, 100), show_legend=False, value_formatter=_percent, margin_right=24))
        chart.x_labels = [row["country"] for row in rows]
        chart.y_labels = list(range(0, 101, 20 if layout == "wide" else 25))
        chart.add("Failed deliveries",  # none (no bar, no label) rather than a 0 on the axis
                  [round(row["delivery_failure_rate"] * 100, 1) or None for row in rows])
        return chart

    return _figure(draw, "Delivery failure rate per country", nonce, False)


def credits(readings: list[dict], nonce: str) -> Markup:
    """The credit readings over the last week."""
    points = [(datetime.fromisoformat(r["at"].replace("Z", "+00:00")).astimezone(UTC)
               .replace(tzinfo=None), r["credits"]) for r in readings]
    span = (points[-1][0] - points[0][0]).total_seconds() if points else 0
    stamp = "%H:%M" if span < 86400 else "%a %H:%M"

    def draw(layout: str):
        chart = pygal.DateTimeLine(**_options(
            layout, True, height=240, show_legend=False, show_dots=len(points) <= 30,
            x_value_formatter=lambda t: t.strftime(stamp), x_label_rotation=0,
            value_formatter=_amount, min_scale=2, max_scale=5))
        chart.add("Credits", points)
        return chart

    return _figure(draw, "Credits over time", nonce, True)
