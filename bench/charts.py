#!/usr/bin/python3
"""charts.py: the table and SVG charts of one `make bench` run.

    /usr/bin/python3 bench/charts.py RESULTS_DIR [--doc docs/benchmarks.md]

Reads RESULTS_DIR/results.json (written by bench/compare.py) and writes
  table.md              every figure: etcd's and moor's medians, the ratio
                        moor/etcd, the issue's goal and whether it is met;
  throughput.svg        put throughput against clients, 1 and 3 members;
  cdf_<workload>.svg    latency percentiles (min, p50, p90, p99, p99.9,
                        max; median of the runs) on a "nines" axis;
then prints the table. --doc replaces the part of that markdown file
between the lines <!-- bench:begin --> and <!-- bench:end --> with the
table, the machine and links to the charts.

Standard library only; the SVG is written by hand.
"""
import argparse
import json
import math
import os
import statistics
import sys

COLORS = {"etcd": "#4878a8", "moor": "#d0583a"}
DASH = {"1m": "", "3m": "6,4"}


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def verdict(f, ratio):
    goal = f.get("goal")
    if goal is None or ratio is None:
        return ""
    if f["better"] == "lower":
        return "met" if ratio <= goal else "**short**"
    return "met" if ratio >= goal else "**short**"


def goal_text(f):
    goal = f.get("goal")
    if goal is None:
        return ""
    return ("<= %gx" if f["better"] == "lower" else ">= %gx") % goal


def table(res):
    rows = ["| figure | unit | etcd 3.4 | moor | moor/etcd | goal | |",
            "|---|---|---:|---:|---:|---|---|"]
    for f in res["figures"]:
        e, m = median(f["etcd"]), median(f["moor"])
        ratio = m / e if e and m is not None else None
        n = max(len(f["etcd"]), len(f["moor"]))
        title = f["title"] + (" (n=%d)" % n if n > 1 else "")
        notes = "; ".join(f.get("notes", []))
        rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            title, f["unit"], fmt(e),
            fmt(m), "%.2fx" % ratio if ratio is not None else "",
            goal_text(f), " ".join(x for x in (verdict(f, ratio), notes)
                                   if x)))
    return "\n".join(rows) + "\n"


def machine_text(meta):
    return ("commit %s%s; %s CPUs (%s), %s GiB memory, disk %s, kernel %s; "
            "%s; %s run%s per figure, %s s per load run%s; whole run %s s" % (
                meta.get("commit"), " (with uncommitted changes)"
                if meta.get("dirty") else "", meta.get("nproc"),
                meta.get("cpu"), meta.get("mem_gib"), meta.get("disk"),
                meta.get("kernel"), " ".join(meta.get("etcd") or []),
                meta.get("runs"), "s" if meta.get("runs", 1) > 1 else "",
                meta.get("duration_s"), " (--quick)" if meta.get("quick")
                else "", meta.get("elapsed_s")))


# ---- SVG


class Chart:
    """A line chart: x and y map through the given functions to pixels."""

    W, H = 640, 400
    L, R, T, B = 70, 150, 40, 50

    def __init__(self, title, xlabel, ylabel):
        self.parts = []
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel

    def frame(self, xticks, yticks):
        pw, ph = self.W - self.L - self.R, self.H - self.T - self.B
        p = self.parts
        p.append('<rect x="0" y="0" width="%d" height="%d" fill="white"/>' %
                 (self.W, self.H))
        p.append('<text x="%d" y="22" font-size="15" text-anchor="middle">'
                 '%s</text>' % (self.L + pw / 2, esc(self.title)))
        for pos, label in xticks:
            x = self.L + pos * pw
            p.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                     'stroke="#ddd"/>' % (x, self.T, x, self.T + ph))
            p.append('<text x="%.1f" y="%d" font-size="11" '
                     'text-anchor="middle">%s</text>' %
                     (x, self.T + ph + 16, esc(label)))
        for pos, label in yticks:
            y = self.T + ph - pos * ph
            p.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" '
                     'stroke="#ddd"/>' % (self.L, y, self.L + pw, y))
            p.append('<text x="%d" y="%.1f" font-size="11" '
                     'text-anchor="end">%s</text>' %
                     (self.L - 6, y + 4, esc(label)))
        p.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                 'stroke="#444"/>' % (self.L, self.T, pw, ph))
        p.append('<text x="%d" y="%d" font-size="12" text-anchor="middle">'
                 '%s</text>' % (self.L + pw / 2, self.H - 12,
                                esc(self.xlabel)))
        p.append('<text x="16" y="%d" font-size="12" text-anchor="middle" '
                 'transform="rotate(-90 16 %d)">%s</text>' %
                 (self.T + ph / 2, self.T + ph / 2, esc(self.ylabel)))

    def line(self, points, color, dash, label, k):
        """points: [(xpos, ypos)] in 0..1 of the plot area."""
        pw, ph = self.W - self.L - self.R, self.H - self.T - self.B
        pts = [(self.L + x * pw, self.T + ph - y * ph) for x, y in points]
        if not pts:
            return
        d = " ".join("%.1f,%.1f" % q for q in pts)
        self.parts.append('<polyline points="%s" fill="none" stroke="%s" '
                          'stroke-width="2"%s/>' %
                          (d, color, ' stroke-dasharray="%s"' % dash
                           if dash else ""))
        for x, y in pts:
            self.parts.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>'
                              % (x, y, color))
        ly = self.T + 10 + 18 * k
        lx = self.W - self.R + 10
        self.parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" '
                          'stroke-width="2"%s/>' %
                          (lx, ly, lx + 24, ly, color,
                           ' stroke-dasharray="%s"' % dash if dash else ""))
        self.parts.append('<text x="%d" y="%d" font-size="12">%s</text>' %
                          (lx + 30, ly + 4, esc(label)))

    def svg(self):
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" '
                'height="%d" font-family="sans-serif">\n%s\n</svg>\n' %
                (self.W, self.H, "\n".join(self.parts)))


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def nice_ticks(lo, hi, n=5):
    """Round linear ticks covering [lo, hi]; returns (ticks, top)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw))
    top = math.ceil(hi / step) * step
    ticks = []
    v = 0.0
    while v <= top + step / 2:
        ticks.append(v)
        v += step
    return ticks, top


def log_ticks(lo, hi):
    """Decades 1-2-5 covering [lo, hi] (lo > 0); returns (ticks, lo, hi)."""
    a = 10 ** math.floor(math.log10(lo))
    b = 10 ** math.ceil(math.log10(hi))
    ticks = []
    d = a
    while d <= b * 1.0001:
        for m in (1, 2, 5):
            if a <= m * d <= b * 1.0001:
                ticks.append(m * d)
        d *= 10
    return ticks, a, b


def throughput_chart(res):
    series = res["series"]
    lines = []
    for tag in ("1m", "3m"):
        sweep = series.get("tput_" + tag)
        if not sweep:
            continue
        for system in ("etcd", "moor"):
            pts = [(int(n), median(v[system])) for n, v in sweep.items()
                   if median(v[system]) is not None]
            if pts:
                lines.append((system, tag, sorted(pts)))
    if not lines:
        return None
    xs = sorted({n for _, _, pts in lines for n, _ in pts})
    ymax = max(y for _, _, pts in lines for _, y in pts)
    yt, top = nice_ticks(0, ymax)
    lx0, lx1 = math.log2(xs[0]), math.log2(xs[-1])
    span = (lx1 - lx0) or 1

    def xpos(n):
        return (math.log2(n) - lx0) / span

    c = Chart("put throughput against clients (32 B keys, 256 B values)",
              "clients (requests in flight, log scale)", "puts/s")
    c.frame([(xpos(n), str(n)) for n in xs],
            [(v / top, "{:,.0f}".format(v)) for v in yt])
    for k, (system, tag, pts) in enumerate(lines):
        c.line([(xpos(n), y / top) for n, y in pts], COLORS[system],
               DASH[tag], "%s, %s" % (system, tag.replace("m", " member")), k)
    return c.svg()


PCTS = [("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99),
        ("p999", 0.999), ("max", None)]


def cdf_chart(name, data):
    """data: {system: [latency_ms objects, one per run]}."""
    curves = {}
    for system in ("etcd", "moor"):
        runs = data.get(system) or []
        if not runs:
            continue
        pts = []
        for key, _ in PCTS:
            vals = [r[key] for r in runs if key in r]
            if vals:
                pts.append((key, statistics.median(vals)))
        curves[system] = pts
    if not curves:
        return None
    allv = [v for pts in curves.values() for _, v in pts if v > 0]
    if not allv:
        return None
    yt, lo, hi = log_ticks(min(allv), max(allv))
    llo, lhi = math.log10(lo), math.log10(hi)

    def ypos(v):
        return (math.log10(max(v, lo)) - llo) / ((lhi - llo) or 1)

    # x: "nines": -log10(1 - p); max drawn one step past p99.9.
    def xpos(key):
        p = dict(PCTS)[key]
        nines = 4.0 if p is None else -math.log10(1 - p)
        return nines / 4.0

    title = name.replace("cdf_", "").replace("_", " ")
    c = Chart("latency percentiles: " + title, "percentile",
              "latency, ms (log scale)")
    c.frame([(xpos(k), k) for k, _ in PCTS],
            [(ypos(v), fmt(v)) for v in yt])
    for k, (system, pts) in enumerate(curves.items()):
        c.line([(xpos(key), ypos(v)) for key, v in pts], COLORS[system], "",
               system, k)
    return c.svg()


def write_charts(res, out):
    made = []
    svg = throughput_chart(res)
    if svg:
        with open(os.path.join(out, "throughput.svg"), "w") as f:
            f.write(svg)
        made.append("throughput.svg")
    for name, data in sorted(res["series"].items()):
        if not name.startswith("cdf_"):
            continue
        # One CDF per sequential/128-client put and per watch latency.
        if name.startswith("cdf_put_") and not (
                name.startswith("cdf_put_seq") or name.endswith("_128")):
            continue
        svg = cdf_chart(name, data)
        if svg:
            with open(os.path.join(out, name + ".svg"), "w") as f:
                f.write(svg)
            made.append(name + ".svg")
    return made


def update_doc(doc, res, out, tab, charts):
    with open(doc) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        raise SystemExit("charts: %s has no %s ... %s block" %
                         (doc, begin, end))
    rel = os.path.relpath(out, os.path.dirname(os.path.abspath(doc)))
    block = [begin, "",
             "Run of %s (`%s`): %s." % (
                 res["meta"].get("started", "")[:16].replace("T", " ") +
                 " UTC", os.path.relpath(out, os.path.dirname(
                     os.path.dirname(os.path.abspath(doc)))),
                 machine_text(res["meta"])),
             "", tab]
    for c in charts:
        block.append("![%s](%s/%s)" % (c[:-4], rel, c))
        block.append("")
    block.append(end)
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(doc, "w") as f:
        f.write(head + "\n".join(block) + tail)


def main():
    ap = argparse.ArgumentParser(description="table and charts of a "
                                 "make bench run")
    ap.add_argument("results", help="a bench/results/<date>/ dir")
    ap.add_argument("--doc", help="markdown file to update between the "
                    "bench:begin/end markers")
    args = ap.parse_args()
    with open(os.path.join(args.results, "results.json")) as f:
        res = json.load(f)
    tab = table(res)
    charts = write_charts(res, args.results)
    with open(os.path.join(args.results, "table.md"), "w") as f:
        f.write("# moor vs etcd 3.4, %s\n\n%s\n\n%s" % (
            res["meta"].get("started", "")[:10], machine_text(res["meta"]),
            tab))
        for c in charts:
            f.write("\n![%s](%s)\n" % (c[:-4], c))
    print(tab)
    print(machine_text(res["meta"]))
    if args.doc:
        update_doc(args.doc, res, args.results, tab, charts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
