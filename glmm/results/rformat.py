"""R's number formatting, as ``print(summary(fit))`` uses it (R src/main/format.c
``formatReal``, R's ``format``, ``zapsmall``, ``format.pval``, ``abbreviate``;
docs/results.md §10).

``format(x, digits = d)`` of a vector shows every element with the fewest significant digits
(≤ d) that represent it to d significant digits, all with the same number of decimals, in
fixed notation unless scientific is narrower; ``nsmall`` asks for at least that many
decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _sig(x: float, digits: int) -> tuple[int, int, int]:
    """(kpower, nsig, neg) of formatReal's ``scientific()``: x ≈ ±m·10^kpower with m
    rounded to ``digits`` significant digits, nsig of them needed."""
    if x == 0.0:
        return 0, 1, 0
    neg = int(x < 0)
    a = abs(x)
    s = f"{a:.{digits - 1}e}"
    mant, exp = s.split("e")
    kp = int(exp)
    m = mant.replace(".", "").rstrip("0")
    return kp, max(1, len(m)), neg


def format_real(values: Sequence[float], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits = digits, nsmall = nsmall)`` of a numeric vector (common
    width, right-justified; a NaN (0/0: the correlation of a zero variance) as "NaN" and
    ±∞ as "Inf"/"-Inf", as R prints them)."""
    xs = [float(v) for v in values]
    if not xs:
        return []
    fin = [v for v in xs if math.isfinite(v)]
    if not fin:
        out = [_nonfinite(v) for v in xs]
    else:
        rgt = mxsl = 0
        mxe, mne, mxns, neg = -(10 ** 9), 10 ** 9, 0, 0
        for v in fin:
            kp, nsig, ng = _sig(v, digits)
            neg = max(neg, ng)
            rgt = max(rgt, nsig - kp - 1)
            mxsl = max(mxsl, kp + 1)
            mxe, mne, mxns = max(mxe, kp), min(mne, kp), max(mxns, nsig)
        rgt = max(0, rgt)
        left = max(1, mxsl)
        wF = neg + left + (rgt + 1 if rgt else 0)
        ew = 2 if max(abs(mxe), abs(mne)) < 100 else 3
        wE = neg + (mxns + 1 if mxns > 1 else mxns) + 2 + ew
        if wF <= wE:
            r = max(rgt, nsmall)
            out = [f"{v:.{r}f}" if math.isfinite(v) else _nonfinite(v) for v in xs]
        else:
            out = [_sci(v, mxns - 1) if math.isfinite(v) else _nonfinite(v) for v in xs]
    w = max(len(s) for s in out)
    return [s.rjust(w) for s in out]


def _nonfinite(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")


def _sci(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}e}"
    mant, exp = s.split("e")
    e = int(exp)
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R 4.2's ``zapsmall``: round to ``digits`` − log10(max |x|) decimals, which R's
    ``round`` takes to the nearest integer (R 4.2 has no ceiling there: 5 − log10(13.55) =
    3.87 rounds to 4 decimals)."""
    a = np.abs(np.asarray(x, dtype=float))
    a = a[~np.isnan(a)]   # R drops NA/NaN before the max; an infinite max rounds to 0 places
    mx = float(a.max()) if a.size else 0.0
    if math.isinf(mx):
        d = 0
    else:
        d = max(0, math.floor(digits - math.log10(mx) + 0.5)) if mx > 0 else digits
    return np.round(x, d)


def format_pval(pv: Sequence[float], digits: int, eps: float = 2.220446049250313e-16
                ) -> list[str]:
    """R's ``format.pval`` (R 4.2): the p-values ≥ 1e-4 formatted together (≥ 1e-3 for
    digits = 1), the smaller ones together, those below eps as "<2e-16"."""
    pv = [float(p) for p in pv]
    out = [""] * len(pv)
    small = [i for i, p in enumerate(pv) if p < eps]
    rest = [i for i, p in enumerate(pv) if p >= eps]
    def expo(p: float) -> int:
        return math.floor(math.log10(p if p > 0 else 1e-50))

    fixp = [i for i in rest if expo(pv[i]) >= -3 or (expo(pv[i]) == -4 and digits > 1)]
    sci = [i for i in rest if i not in fixp]
    for group in (fixp, sci):
        if group:
            for i, s in zip(group, format_real([pv[i] for i in group], digits), strict=True):
                out[i] = s.strip()
    if small:
        d = max(1, digits - 2)
        if rest:
            nc = max(len(out[i]) for i in rest)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        e = format_real([eps], d)[0].strip()
        for i in small:
            out[i] = f"<{sep}{e}"
    return out


def _vowel(c: str) -> bool:
    return c in "aeiou"


def _strip(name: str, minlen: int) -> str:
    """R's C ``stripchars`` (abbreviate, use.classes = TRUE)."""
    b = list(name.strip())
    if len(b) <= minlen:
        return "".join(b)

    def first(i: int) -> bool:
        return b[i - 1].isspace()

    def last(i: int) -> bool:
        return not b[i - 1].isspace() and (i + 1 >= len(b) or b[i + 1].isspace())

    for test in (lambda i: _vowel(b[i]) and last(i), lambda i: _vowel(b[i]) and not first(i),
                 lambda i: b[i].islower() and last(i), lambda i: b[i].islower() and not first(i),
                 lambda i: not first(i) and not b[i].isspace()):
        i = len(b) - 1
        while i > 0:
            if i < len(b) and test(i):
                del b[i]
                if len(b) - sum(c.isspace() for c in b) <= minlen:
                    return "".join(c for c in b if not c.isspace())
            i -= 1
    return "".join(c for c in b if not c.isspace())


def abbreviate(names: Sequence[str], minlength: int) -> list[str]:
    """R's ``abbreviate(names, minlength)``: each name shortened by ``stripchars``, the
    minimum length raised for the duplicates until all are distinct."""
    out = [_strip(n, minlength) for n in names]
    m = minlength
    while len(set(out)) < len(out) and m < max(len(n) for n in names):
        m += 1
        dup = {s for s in out if out.count(s) > 1}
        out = [_strip(n, m) if o in dup else o for n, o in zip(names, out, strict=True)]
    return out


def strwrap(text: str, width: int, exdent: int = 0) -> list[str]:
    """R's ``strwrap``: words joined greedily into lines shorter than ``width``."""
    lines, cur = [], ""
    for word in text.split():
        trial = word if not cur else f"{cur} {word}"
        pad = exdent if lines else 0
        if cur and len(trial) + pad >= width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    lines.append(cur)
    return [(" " * exdent if k else "") + s for k, s in enumerate(lines)]


def print_matrix(cells: list[list[str]], header: Sequence[str], rownames: Sequence[str],
                 right: bool) -> list[str]:
    """R's print of a character matrix (quote = FALSE): the row names left-justified, each
    column as wide as its widest entry or header, justified ``right`` or left, columns
    separated by one space."""
    ncol = len(header)
    rw = max([len(r) for r in rownames] + [0])
    widths = [max([len(header[j])] + [len(row[j]) for row in cells]) for j in range(ncol)]

    def just(s: str, w: int) -> str:
        return s.rjust(w) if right else s.ljust(w)

    lines = [" " * rw + "".join(" " + just(header[j], widths[j]) for j in range(ncol))]
    for name, row in zip(rownames, cells, strict=True):
        lines.append(name.ljust(rw) + "".join(" " + just(row[j], widths[j])
                                             for j in range(ncol)))
    return lines


def print_named(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """R's print of a named vector: every field as wide as the widest name or value,
    right-justified, each followed by one space."""
    w = max(len(s) for s in [*names, *values])
    return ["".join(s.rjust(w) + " " for s in names), "".join(s.rjust(w) + " " for s in values)]
