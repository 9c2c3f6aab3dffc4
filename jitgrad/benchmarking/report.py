"""Plain-text tables for benchmark output (bench/ scripts and the ``jitgrad bench`` CLI)."""
from __future__ import annotations

import math
import re
from numbers import Integral, Real

# Text cells that are a number with an optional short unit ("12.5 ms", "1.3x", "87%")
# align like numbers.
_NUMERIC_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)? ?[a-zA-Z%/\u00b5]{0,6}$")


def format_value(value: object) -> str:
    """One cell as text: ints as-is, floats with ~3-4 significant digits, None as "-".

    Floats keep a fixed number of significant digits rather than decimals, because one
    column can mix 1.2e-6 s and 350 s; very large or small magnitudes use exponents.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            return str(x)
        if x == 0:
            return "0"
        mag = abs(x)
        if mag >= 1e6 or mag < 1e-3:
            return f"{x:.3g}"
        if mag >= 100:
            return f"{x:.0f}" if mag >= 1000 else f"{x:.1f}"
        return f"{x:.3g}" if mag < 1 else f"{x:.2f}"
    return str(value)


def format_time(seconds: float | None) -> str:
    """A duration with a unit that keeps 3 significant digits: "418 ms", "1.93 us", "2.50 s"."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        value = seconds / scale
        # 0.9995 rather than 1: 999.96 ms would otherwise print as "1e+03 ms".
        if abs(value) >= 0.9995 or unit == "ns":
            break
    return f"{value:.3g} {unit}" if abs(value) >= 10 else f"{value:.2f} {unit}"


def _is_number(value: object) -> bool:
    """Whether a cell aligns right: a real number, or text that reads as one with a unit."""
    if isinstance(value, str):
        return bool(_NUMERIC_TEXT.match(value.strip()))
    return isinstance(value, Real) and not isinstance(value, bool)


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Render ``rows`` as an aligned text table with a header and a rule.

    Only ``columns`` are shown, in that order; a missing key shows as "-". Numbers (and
    the header of an all-number column) are right-aligned, text is left-aligned.
    """
    cells = [[format_value(row.get(col)) for col in columns] for row in rows]
    numeric = [all(_is_number(row.get(col)) or row.get(col) is None for row in rows) and
               any(_is_number(row.get(col)) for row in rows) for col in columns]
    widths = [max([len(col)] + [len(r[j]) for r in cells]) for j, col in enumerate(columns)]

    def line(texts: list[str], raw: list[object] | None) -> str:
        # A number is right-aligned even in a mixed column; headers follow their column.
        parts = [t.rjust(widths[j]) if (numeric[j] if raw is None else numeric[j] or _is_number(raw[j]))
                 else t.ljust(widths[j]) for j, t in enumerate(texts)]
        return "  ".join(parts).rstrip()

    out = [line(list(columns), None), "  ".join("-" * w for w in widths)]
    out += [line(text, [row.get(col) for col in columns]) for row, text in zip(rows, cells)]
    return "\n".join(out)
