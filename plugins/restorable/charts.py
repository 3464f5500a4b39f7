"""Charts as SVG drawn on the server (no JavaScript, no CDN), and the restore-time forecast.

``chart()`` draws one or more series of (x, y) points on linear axes: time on x (Unix seconds) for
histories, or a size for the restore-time scatter, with an optional fitted line. ``fit_line`` is
ordinary least squares; ``restore_forecast`` turns the drills' (size, RTO) pairs into "a restore of
this size would take about N s".
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH, HEIGHT = 620, 210
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 34
COLORS = ("#2f6fb0", "#c2571a", "#3c8d4a", "#8a4fb0")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """``(intercept, slope)`` of the least-squares line through ``points``; None without two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


def restore_forecast(drills: Sequence[tuple[float, float]], size: float) -> float | None:
    """Seconds a restore of ``size`` bytes would take, from the drills' ``(bytes, rto_seconds)``.

    The fitted line when there are two sizes and it rises with size; else the drills' mean rate
    (seconds per byte) times ``size``. None without a drill.
    """
    usable = [(x, y) for x, y in drills if x > 0 and y >= 0]
    if not usable:
        return None
    line = fit_line(usable)
    if line is not None and line[1] > 0:
        return max(0.0, line[0] + line[1] * size)
    return size * sum(y / x for x, y in usable) / len(usable)


def _ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / count
    return [lo + i * step for i in range(count + 1)]


def _number(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def _date(value: float, span: float = 86400.0) -> str:
    """A time label as precise as the chart's span needs (seconds within two hours, days beyond two weeks)."""
    fmt = "%H:%M:%S" if span < 7200 else "%m-%d %H:%M" if span < 14 * 86400 else "%Y-%m-%d"
    return datetime.fromtimestamp(value, UTC).strftime(fmt)


def chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str,
    x_is_time: bool = True,
    x_label: str = "",
    trend: tuple[float, float] | None = None,
    y_format: Callable[[float], str] = _number,
) -> str:
    """An SVG chart of ``series``; a short note instead when there is nothing to draw."""
    points = [p for s in series for p in s.points]
    esc = html.escape
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">'
        f"<title>{esc(title)}</title>"
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{esc(title)}</text>'
    )
    if not points:
        return head + f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#777">no data yet</text></svg>'
    x_lo, x_hi = min(x for x, _ in points), max(x for x, _ in points)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_hi = max(y for _, y in points) * 1.1 or 1.0
    y_lo = 0.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    parts = [head]
    for y in _ticks(y_lo, y_hi):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{esc(y_format(y))}</text>')
    ticks = _ticks(x_lo, x_hi, 3)
    for i, x in enumerate(ticks):
        label = _date(x, x_hi - x_lo) if x_is_time else _number(x)
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"  # the ends stay inside
        parts.append(f'<text x="{px(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}">{esc(label)}</text>')
    parts.append(
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" '
        f'text-anchor="middle">{esc(y_label)}</text>'
    )
    if x_label:
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">{esc(x_label)}</text>')
    if trend is not None:
        a, b = trend
        parts.append(
            f'<line x1="{px(x_lo):.1f}" y1="{py(max(y_lo, a + b * x_lo)):.1f}" x2="{px(x_hi):.1f}" '
            f'y2="{py(min(y_hi, a + b * x_hi)):.1f}" stroke="#999" stroke-dasharray="4 3">'
            "<title>fitted trend</title></line>"
        )
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        ordered = sorted(s.points)
        if x_is_time and len(ordered) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ordered)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for x, y in ordered:
            tip = f"{s.name}: {y_format(y)} at {_date(x) if x_is_time else _number(x)}"
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"><title>{esc(tip)}</title></circle>'
            )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 120 * (len(series) - i)}" y="16" fill="{color}">&#9679; {esc(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
