#!/usr/bin/env python3
"""Summarize a CSV and draw a bar or line chart of its numeric columns as SVG.

Usage: csv_chart.py DATA.csv [--summary] [--x COL] [--y COL[,COL…]] [--kind bar|line]
                    [--title TEXT] [--out FILE.svg] [--delimiter CHAR]
Standard library only.
"""

import argparse
import csv
import json
import os
import sys
from xml.sax.saxutils import escape

MAX_ROWS = 500
WIDTH, HEIGHT = 900, 500
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 60, 110
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]


def number(text):
    text = text.strip().replace(",", "") if text else ""
    if not text:
        return None
    return float(text)


def is_numeric(rows, column):
    seen = False
    for row in rows:
        try:
            if number(row.get(column) or "") is not None:
                seen = True
        except ValueError:
            return False
    return seen


def read(path, delimiter):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if not reader.fieldnames:
            raise SystemExit(f"{path} has no header row")
        return list(reader.fieldnames), list(reader)


def summary(columns, rows):
    numeric = [c for c in columns if is_numeric(rows, c)]
    stats = {}
    for c in numeric:
        values = [v for v in (number(r.get(c) or "") for r in rows) if v is not None]
        stats[c] = {
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "sum": sum(values),
        }
    return {"rows": len(rows), "columns": columns, "numeric": numeric, "stats": stats}


def nice_ticks(low, high, count=5):
    if low == high:
        high = low + 1
    span = high - low
    raw = span / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    while magnitude > raw:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if magnitude * step * count >= span:
            step = magnitude * step
            break
    start = (low // step) * step
    ticks = []
    value = start
    while value <= high + step / 2:
        ticks.append(round(value, 10))
        value += step
    return ticks


def label(v):
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:,.2f}"


def chart(rows, x, ys, kind, title):
    series = []
    for y in ys:
        values = []
        for i, row in enumerate(rows, start=2):
            try:
                values.append(number(row.get(y) or ""))
            except ValueError:
                raise SystemExit(f"column `{y}` has text on line {i}: {row.get(y)!r}")
        series.append(values)
    labels = [row.get(x, "") for row in rows]
    present = [v for s in series for v in s if v is not None]
    if not present:
        raise SystemExit("no numeric values to draw")
    ticks = nice_ticks(min(0.0, min(present)), max(0.0, max(present)))
    low, high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def py(v):
        return TOP + plot_h - (v - low) / (high - low) * plot_h

    n = max(len(labels), 1)
    slot = plot_w / n
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="30" text-anchor="middle" font-size="18">{escape(title)}</text>',
    ]
    for t in ticks:
        y = py(t)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{label(t)}</text>')
    step = max(1, n // 25)
    for i, name in enumerate(labels):
        if i % step:
            continue
        cx = LEFT + slot * (i + 0.5)
        out.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 16}" text-anchor="end" transform="rotate(-40 {cx:.1f} {TOP + plot_h + 16})">{escape(str(name)[:24])}</text>'
        )
    for k, values in enumerate(series):
        color = COLORS[k % len(COLORS)]
        if kind == "bar":
            width = slot * 0.8 / len(series)
            for i, v in enumerate(values):
                if v is None:
                    continue
                x0 = LEFT + slot * i + slot * 0.1 + width * k
                top, bottom = sorted((py(v), py(0.0)))
                out.append(f'<rect x="{x0:.1f}" y="{top:.1f}" width="{width:.1f}" height="{max(bottom - top, 0.5):.1f}" fill="{color}"><title>{escape(str(labels[i]))}: {label(v)}</title></rect>')
        else:
            points = [f"{LEFT + slot * (i + 0.5):.1f},{py(v):.1f}" for i, v in enumerate(values) if v is not None]
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>')
            for p in points:
                px, pv = p.split(",")
                out.append(f'<circle cx="{px}" cy="{pv}" r="3" fill="{color}"/>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(0.0):.1f}" y2="{py(0.0):.1f}" stroke="#333"/>')
    for k, y in enumerate(ys):
        lx = LEFT + k * 160
        out.append(f'<rect x="{lx}" y="{HEIGHT - 24}" width="12" height="12" fill="{COLORS[k % len(COLORS)]}"/>')
        out.append(f'<text x="{lx + 18}" y="{HEIGHT - 14}">{escape(y)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--x")
    p.add_argument("--y")
    p.add_argument("--kind", choices=["bar", "line"], default="bar")
    p.add_argument("--title")
    p.add_argument("--out", default="/workspace/output/chart.svg")
    p.add_argument("--delimiter", default=",")
    a = p.parse_args(argv)
    delimiter = "\t" if a.delimiter in ("\\t", "tab") else a.delimiter
    columns, rows = read(a.csv, delimiter)
    info = summary(columns, rows)
    if a.summary:
        print(json.dumps(info, indent=2))
        return 0
    x = a.x or columns[0]
    if x not in columns:
        raise SystemExit(f"no column `{x}`; columns: {', '.join(columns)}")
    ys = [c.strip() for c in a.y.split(",")] if a.y else [c for c in info["numeric"] if c != x]
    for y in ys:
        if y not in columns:
            raise SystemExit(f"no column `{y}`; columns: {', '.join(columns)}")
    if not ys:
        raise SystemExit("no numeric column to draw: name one with --y")
    note = ""
    if len(rows) > MAX_ROWS:
        note = f" (first {MAX_ROWS} of {len(rows)} rows)"
        rows = rows[:MAX_ROWS]
    svg = chart(rows, x, ys, a.kind, (a.title or f"{', '.join(ys)} by {x}") + note)
    folder = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(folder, exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(svg)
    print(json.dumps({"chart": a.out, "x": x, "y": ys, "kind": a.kind, "rows": len(rows), "stats": {y: info["stats"].get(y) for y in ys}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
