"""Medians, ratios and the Markdown report of a benchmark run.

Results are samples keyed by (metric key, system); the report shows, per
metric, the median of each system, the ratio skiff/QEMU, and for the CPU
workloads the ratios to the native run.  Every ratio is "the first divided
by the second"; the `better` column says whether a smaller or a larger
number is the good direction for that metric (times and costs: lower;
scaling: higher), so a reader never has to guess what 0.8 means.
"""

import statistics

SYSTEMS = ("skiff", "qemu", "native")


def fmt(v, unit=""):
    if v is None:
        return "—"
    a = abs(v)
    if unit == "" and float(v).is_integer():
        s = f"{v:.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return f"{s} {unit}".strip() if unit not in ("", "×") else (s + unit)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Results:
    def __init__(self):
        self.samples = {}       # (key, system) -> [values]
        self.derived = {}       # (key, system) -> value

    def add(self, key, system, value):
        self.samples.setdefault((key, system), []).append(value)

    def median(self, key, system):
        if (key, system) in self.derived:
            return self.derived[(key, system)]
        v = self.samples.get((key, system))
        return statistics.median(v) if v else None


def cell(res, m, system, runs):
    """A median, marked (n=k) when fewer runs than asked for gave a value."""
    v = res.median(m.key, system)
    n = len(res.samples.get((m.key, system), []))
    return fmt(v, m.unit) + (f" (n={n})" if v is not None and 0 < n < runs else "")


def tables(rows, opts, res):
    """The result tables as Markdown lines."""
    lines = []
    main = ["| Row | Measure | skiff | QEMU | skiff / QEMU | native | skiff / native | QEMU / native | better |",
            "|---|---|--:|--:|--:|--:|--:|--:|---|"]
    cput = ["| Row | Workload | skiff | QEMU | skiff / QEMU | native | skiff / native | QEMU / native |",
            "|---|---|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        for m in row.metrics(opts):
            sk, qe, na = (res.median(m.key, s) for s in SYSTEMS)
            r = ratio(sk, qe)
            cells = [row.title, m.label, cell(res, m, "skiff", opts.runs), cell(res, m, "qemu", opts.runs),
                     fmt(r, "×") if r is not None else "—"]
            if m.native:
                cells += [cell(res, m, "native", opts.runs), fmt(ratio(sk, na), "×"), fmt(ratio(qe, na), "×")]
            else:
                cells += ["—", "—", "—"]
            if m.table == "main":
                main.append("| " + " | ".join(cells + [m.better]) + " |")
            else:
                cput.append("| " + " | ".join(cells) + " |")
    lines += main
    if len(cput) > 2:
        lines += ["", "Host CPU time (user + system seconds of the VMM process, all threads; for native, of the "
                  "busybox processes) spent on each workload. Unlike the guest-clock times above this does not "
                  "grow when other programs compete for the host's cores, so it is the steadier comparison on a "
                  "busy machine. Lower is better.", ""] + cput
    return lines


def raw_samples(rows, opts, res):
    lines = []
    for row in rows:
        for m in row.metrics(opts):
            parts = []
            for s in SYSTEMS:
                v = res.samples.get((m.key, s))
                if v:
                    parts.append(f"{s}: " + ", ".join(fmt(x) for x in v))
            if parts:
                lines.append(f"- `{m.key}` — " + "; ".join(parts))
    return lines


def consistency(checks):
    """Group check values by what was checked; every system and run must
    agree (same compressed size, digest, awk result)."""
    by = {}
    for what, system, value in checks:
        by.setdefault(what, {}).setdefault(value, set()).add(system)
    lines = []
    for what, vals in by.items():
        if len(vals) == 1:
            (v, systems), = vals.items()
            lines.append(f"- {what}: `{v}` on every run ({', '.join(sorted(systems))}) — consistent")
        else:
            desc = "; ".join(f"`{v}` on {', '.join(sorted(s))}" for v, s in vals.items())
            lines.append(f"- **MISMATCH** {what}: {desc}")
    return lines
