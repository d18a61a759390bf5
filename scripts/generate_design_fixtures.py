#!/usr/bin/env python3
"""Ask R/lme4 what it builds from each design test case and store it in fixtures/design.json.

    .venv/bin/python scripts/generate_design_fixtures.py            # write fixtures/design.json
    .venv/bin/python scripts/generate_design_fixtures.py --out F    # write elsewhere

For every case (a formula over a data set, with optional weights/offset column names) R runs
``lme4::glFormula`` in the C locale (``parity/r/design.R``) and reports the parsed formula
(``findbars``/``nobars``), the rows kept, ``model.response/weights/offset``, X with its
column names and dropped columns, and ``reTrms``: Zt, the Lambdat pattern with Lind, theta,
lower, cnms, flist (names, levels, codes, assign), Gp and lme4's theta names.  Cases that
lme4 refuses store R's error message instead.  Nothing here runs our engine: the expected
values all come from R.

The data are the corpus fixtures' data (``parity.fixtures.load(case).data``, referenced by
case name and a SHA-256 of their JSON) and small synthetic data sets built here with a fixed
seed and stored in the file.  Both are handed to R through ``session().dataframe()`` so both
sides see identical values.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from parity import fixtures  # noqa: E402
from parity.atomic import write_text_atomic  # noqa: E402
from parity.cases import CORPUS  # noqa: E402
from parity.dataset import Column, Dataset  # noqa: E402
from parity.r_bridge import session  # noqa: E402

SCHEMA_VERSION = 1
DEFAULT_OUT = ROOT / "fixtures" / "design.json"


@dataclass(frozen=True)
class DesignCase:
    """A formula over a data set: ``data`` is ``"corpus:<case>"`` or a synthetic set's name."""

    name: str
    formula: str
    data: str
    weights: str | None = None
    offset: str | None = None
    as_character: tuple[str, ...] = ()
    family: str = "binomial"
    check_resp: bool = False
    expect_error: bool = False
    notes: str = ""
    tags: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------
def _factor(name: str, labels: list[str | None], levels: list[str],
            ordered: bool = False) -> Column:
    index = {lev: i for i, lev in enumerate(levels)}
    return Column(name, "factor", tuple(None if v is None else index[v] for v in labels),
                  tuple(levels), ordered)


def _double(name: str, values: Any) -> Column:
    return Column(name, "double", tuple(None if v is None else float(v) for v in values))


def _integer(name: str, values: Any) -> Column:
    return Column(name, "integer", tuple(None if v is None else int(v) for v in values))


def _logical(name: str, values: Any) -> Column:
    return Column(name, "logical", tuple(None if v is None else bool(v) for v in values))


def synth() -> Dataset:
    """60 rows covering every design feature the tests check (fixed seed)."""
    rng = np.random.default_rng(20240611)
    n = 60
    g = [f"g{i // 10 + 1}" for i in range(n)]                       # 6 levels, blocks of 10
    a = [["a1", "a2", "a3"][i % 3] for i in range(n)]
    b = [["z", "y", "x"][(i // 3) % 3] for i in range(n)]           # levels z, y, x (not sorted)
    h = [["h1", "h2"][i % 2] for i in range(n)]                     # 2 levels
    g3 = [["p", "q", "r"][(i // 2) % 3] for i in range(n)]          # 3 levels
    k = [["k1", "k2", "k3"][(i // 5) % 3] for i in range(n)]        # 3 levels
    # b2 never takes "w" where a == "a3": an empty cell of a*b2
    b2 = [("v" if a[i] == "a3" else ["v", "w"][(i // 3) % 2]) for i in range(n)]
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    pos = rng.gamma(2.0, 1.5, size=n)
    tot = rng.integers(5, 20, size=n)
    cnt = rng.binomial(tot, 0.4)
    y01 = (rng.random(n) < 0.45).astype(float)
    ordl = ["low", "mid", "high", "top"]
    o = [ordl[i % 4] for i in range(n)]
    lg = [bool(v) for v in (rng.random(n) < 0.5)]
    # a character variable whose C-locale order (B, Z, _c, a, b) differs from its given one
    chl = ["b", "a", "Z", "_c", "B"]
    ch = [chl[int(v)] for v in rng.integers(0, 5, size=n)]
    num_g = [[1, 2, 10, 20][i % 4] for i in range(n)]                # numeric sort != string sort
    dbl_g = [[0.5, 100000.0, 2.25, -1.0, 1e-5][i % 5] for i in range(n)]
    w = rng.uniform(0.5, 3.0, size=n)
    negw = w.copy()
    negw[7] = -1.0
    off = rng.normal(scale=0.3, size=n)
    dup = 2.0 * x + 1.0                                             # collinear with (1, x)
    na_used = rng.normal(size=n).tolist()
    for i in range(n):
        if a[i] == "a3" and i % 2 == 0:
            na_used[i] = None
    na_unused = [None if i % 7 == 0 else float(v) for i, v in enumerate(rng.normal(size=n))]
    g_na = [None if i in (3, 17, 40) else g[i] for i in range(n)]
    # every row of level "a3" is missing here, so "a3" is dropped after na.omit
    a_drop = [None if a[i] == "a3" else a[i] for i in range(n)]
    return Dataset((
        _double("y01", y01),
        _factor("yf", ["yes" if v else "no" for v in y01], ["no", "yes"]),
        _logical("ylg", [bool(v) for v in y01]),
        _integer("cnt", cnt),
        _integer("tot", tot),
        _factor("ych", ["s" if v else "f" for v in y01], ["s", "f"]),
        _double("x", x),
        _double("z", z),
        _double("pos", pos),
        _double("dup", dup),
        _factor("g", g, [f"g{i}" for i in range(1, 7)]),
        _factor("a", a, ["a1", "a2", "a3"]),
        _factor("b", b, ["z", "y", "x"]),
        _factor("b2", b2, ["v", "w"]),
        _factor("h", h, ["h1", "h2"]),
        _factor("g3", g3, ["p", "q", "r"]),
        _factor("k", k, ["k1", "k2", "k3"]),
        _factor("o", o, ordl, ordered=True),
        _logical("lg", lg),
        _factor("ch", ch, chl),
        _integer("num_g", num_g),
        _double("dbl_g", dbl_g),
        _double("w", w),
        _double("negw", negw),
        _double("off", off),
        _double("na_used", na_used),
        _double("na_unused", na_unused),
        _factor("g_na", g_na, [f"g{i}" for i in range(1, 7)]),
        _factor("a_drop", a_drop, ["a1", "a2", "a3"]),
        # a level nobody uses, and a one-level factor
        _factor("f_unused", [["u1", "u2"][i % 2] for i in range(n)], ["u0", "u1", "u2"]),
        _factor("one", ["only"] * n, ["only"]),
        _factor("obs", [f"o{i:02d}" for i in range(n)], [f"o{i:02d}" for i in range(n)]),
    ))


SYNTHETIC = {"synth": synth}


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------
def _corpus_cases() -> list[DesignCase]:
    return [DesignCase(f"corpus-{c.name}", c.formula, f"corpus:{c.name}", c.weights, c.offset,
                       family=c.family, tags=("corpus",)) for c in CORPUS]


S = "synth"
SYNTHETIC_CASES: tuple[DesignCase, ...] = (
    DesignCase("nested", "y01 ~ x + (1 | a/b)", S, notes="a/b -> b:a then a"),
    DesignCase("nested3", "y01 ~ 1 + (1 | a/b/h)", S, notes="c:(b:a) naming"),
    DesignCase("interaction-group", "y01 ~ x + (1 | b:a)", S, notes="%i% with b major"),
    DesignCase("slope", "y01 ~ x + (x | g)", S),
    DesignCase("slope-no-intercept", "y01 ~ x + (0 + x | g)", S),
    DesignCase("double-vert", "y01 ~ x + (x || g)", S),
    DesignCase("double-vert-3", "y01 ~ x + (1 + x + z || g)", S),
    DesignCase("double-vert-interaction", "y01 ~ 1 + (x * z || g)", S),
    DesignCase("shared-factor", "y01 ~ x + (1 | g) + (0 + x | g)", S, notes="flist dedupe"),
    DesignCase("ties-reversed", "y01 ~ x + (1 | h) + (1 | g3) + (1 | k)", S,
               notes="nl = 2,3,3 -> k, g3, h"),
    DesignCase("ties-kept", "y01 ~ x + (1 | g3) + (1 | k)", S, notes="nl = 3,3: no reorder"),
    DesignCase("reorder-mixed", "y01 ~ x + (1 | h) + (x | g) + (1 | a:b)", S),
    DesignCase("factor-slope", "y01 ~ x + (a | g)", S),
    DesignCase("factor-slope-dummy", "y01 ~ x + (0 + a | g)", S),
    DesignCase("group-integer", "y01 ~ x + (1 | num_g)", S, notes="levels 1, 2, 10, 20"),
    DesignCase("group-double", "y01 ~ x + (1 | dbl_g)", S, notes="as.character labels"),
    DesignCase("group-character", "y01 ~ x + (1 | ch)", S, as_character=("ch",),
               notes="C-locale level order"),
    DesignCase("group-logical", "y01 ~ x + (1 | lg)", S),
    DesignCase("group-character-interaction", "y01 ~ x + (1 | ch:a)", S, as_character=("ch",)),
    DesignCase("expr-power-scale-log", "y01 ~ x + I(x^2) + scale(z) + log(pos) + (1 | g)", S),
    DesignCase("expr-more", "y01 ~ I(x > 0) + exp(z/3) + sqrt(pos) + I(x * z - 1) + "
               "log(pos, 2) + I(-x^3) + (1 | g)", S),
    DesignCase("interaction-numeric-factor", "y01 ~ x:a + (1 | g)", S),
    DesignCase("interaction-crossed", "y01 ~ a * b + (1 | g)", S),
    DesignCase("interaction-numeric-crossed", "y01 ~ x * a + (1 | g)", S),
    DesignCase("interaction-only", "y01 ~ a:b + (1 | g)", S, notes="rank deficient"),
    DesignCase("no-intercept-factors", "y01 ~ 0 + a + x:b + (1 | g)", S),
    DesignCase("power-terms", "y01 ~ (a + b + x)^2 + (1 | g)", S),
    DesignCase("nesting-fixed", "y01 ~ a/x + (1 | g)", S),
    DesignCase("interaction-order", "y01 ~ b + x:b + z:a:b + (1 | g)", S),
    DesignCase("ordered", "y01 ~ o + (1 | g)", S),
    DesignCase("ordered-no-intercept", "y01 ~ 0 + o + x + (1 | g)", S),
    DesignCase("ordered-interaction", "y01 ~ x + x:o + (1 | g)", S),
    DesignCase("logical", "y01 ~ lg + x + (1 | g)", S),
    DesignCase("logical-interaction", "y01 ~ lg:a + (1 | g)", S),
    DesignCase("logical-slope", "y01 ~ x + (lg | g)", S),
    DesignCase("character-fixed", "y01 ~ ch + (1 | g)", S, as_character=("ch",)),
    DesignCase("rank-collinear", "y01 ~ x + dup + (1 | g)", S),
    DesignCase("rank-empty-cell", "y01 ~ a * b2 + (1 | g)", S),
    DesignCase("na-used", "y01 ~ na_used + a + (1 | g)", S,
               notes="rows dropped; na_unused ignored"),
    DesignCase("na-unused-only", "y01 ~ x + (1 | g)", S, notes="na_unused not in the model"),
    DesignCase("na-group", "y01 ~ x + scale(z) + (1 | g_na)", S,
               notes="NA in the grouping factor; scale() over all rows"),
    DesignCase("na-scale", "y01 ~ scale(na_used) + (1 | g_na)", S,
               notes="scale() over every non-NA value, before rows are dropped"),
    DesignCase("collinear-scale", "y01 ~ x + scale(x) + (1 | g)", S, notes="scale(x) dropped"),
    DesignCase("na-drops-level", "y01 ~ a_drop + (1 | g)", S, notes="a3 gone after na.omit"),
    DesignCase("unused-level", "y01 ~ f_unused + (1 | g)", S),
    DesignCase("offset-term-and-arg", "cnt ~ x + offset(log(pos)) + (1 | g)", S, offset="off",
               family="poisson"),
    DesignCase("offset-two-terms", "cnt ~ offset(z) + x + offset(log(pos)) + (1 | g)", S,
               family="poisson"),
    DesignCase("offset-arg-only", "cnt ~ x + (1 | g)", S, offset="off", family="poisson"),
    DesignCase("weights", "y01 ~ x + (1 | g)", S, weights="w"),
    DesignCase("weights-offset-na", "y01 ~ x + (1 | g)", S, weights="w", offset="na_unused"),
    DesignCase("response-factor", "yf ~ x + (1 | g)", S),
    DesignCase("response-logical", "ylg ~ x + (1 | g)", S),
    DesignCase("response-cbind", "cbind(cnt, tot - cnt) ~ x + (1 | g)", S),
    DesignCase("factor-call", "y01 ~ factor(num_g) + x:factor(dbl_g) + (1 | g)", S),
    DesignCase("matrix-variable", "y01 ~ cbind(x, z, 2 * x) + (1 | g)", S,
               notes="colnames x, z and ''; the third is collinear"),
    DesignCase("intercept-only-fixed", "y01 ~ (1 | g)", S),
    DesignCase("no-intercept-numeric", "y01 ~ 0 + x + (1 | g)", S),
    DesignCase("minus-one", "y01 ~ x - 1 + (1 | g)", S),
    # lme4 refuses these
    DesignCase("error-one-level", "y01 ~ x + (1 | one)", S, expect_error=True),
    DesignCase("error-zdims", "y01 ~ x + (x | obs)", S, expect_error=True),
    DesignCase("error-fixed-one-level", "y01 ~ one + (1 | g)", S, expect_error=True),
    DesignCase("error-no-bars", "y01 ~ x", S, expect_error=True),
    DesignCase("error-unknown-variable", "y01 ~ nosuch + (1 | g)", S, expect_error=True),
    DesignCase("error-negative-weights", "y01 ~ x + (1 | g)", S, weights="negw",
               check_resp=True, expect_error=True),
    DesignCase("error-infinite-response", "log(y01) ~ x + (1 | g)", S, family="poisson",
               check_resp=True, expect_error=True),
    DesignCase("error-character-response", "ych ~ x + (1 | g)", S, as_character=("ych",),
               check_resp=True, expect_error=True),
)


#: Expressions whose R deparse1() the deparser must reproduce.
DEPARSE = (
    "a/b*c^2 + I(x>2) - log( y , 2) + d %in% e + (a+b):c + -x",
    "1e5 + 0.1 + 100000L + 1e-20 + 123456 + 2.50 + 0x10 + 1e15 + 1e16 + 0.0001 + 123456.7",
    "f(a=1, 'b') + x[1] + !x & y | z == 2",
    "`my x` + `if` + x.y + .a + ._b + `_x` + `1a`",
    "-2^2 + (-2)^2 + 2^-1 + a-(b-c) + (a-b)-c + a^b^c + (a^b)^c",
    "y ~ x + (1|g) + (x||h) + offset(log(e))",
    "cbind(incidence, size-incidence) ~ period + (1 | herd)",
    "a %% b %/% c * d / e",
    "x <= 1 & y >= 2 | z != 3 && w < 4 || v > 5",
)

#: Doubles whose R as.character() factor labels must match.
NUMBERS = (0.5, 100000.0, 2.25, -1.0, 1e-5, 123456.0, 1234567.0, 0.1 + 0.2, 1 / 3, 1e15, 1e16,
           -0.000123, 3.0, 1e-300, 2.0**60, 0.1, 100.0, 1e5 + 0.1)

#: Right-hand sides whose R terms() (labels, order, intercept, offsets, coding) must match.
TERMS = (
    "x", "1", "0", "0 + x", "x - 1", "-1 + x", "a - 1 - 0", "a*b", "a:b", "b + a:b",
    "(a + b)*(c + d)", "(a + b + c)^2", "(a + b + c)^3", "a/b", "a/b/c", "b %in% a",
    "a*b - a", "a*b - a:b", "x + offset(o) + z", "offset(o) + a:offset(o) + b",
    "I(x^2) + log(x) + x:I(x^2)", "x:y:z + x + y:z", "(a + b):c + a", "a + b:a + b",
    "x + x", "a:b + b:a", "(a*b*c) - a:b:c", "a + (b + c)", "a/(b + c)",
    "(a + b):(c + d)", "(a + b) %in% (c + d)", "(a + b)/(c + d)", "(a + b)^2 - a:b + c",
    "c:(a + b) + a:b:c", "-1 + 0 + x", "x - 0", "(a + b)*c - c",
)


def all_cases() -> list[DesignCase]:
    return _corpus_cases() + list(SYNTHETIC_CASES)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def data_digest(ds: Dataset) -> str:
    """SHA-256 of a data set's canonical JSON (detects a changed corpus fixture)."""
    text = json.dumps(ds.to_json(), sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_dataset(ref: str, synthetic: dict[str, Dataset]) -> Dataset:
    if ref.startswith("corpus:"):
        return fixtures.load(ref.split(":", 1)[1]).data
    return synthetic[ref]


def run_case(r: Any, case: DesignCase, ds: Dataset) -> dict[str, Any]:
    ro = r.ro
    null = ro.NULL
    args = [
        r.dataframe(ds),
        ro.StrVector([case.formula]),
        ro.StrVector([case.weights]) if case.weights else null,
        ro.StrVector([case.offset]) if case.offset else null,
        ro.StrVector(list(case.as_character)),
        ro.StrVector([case.family]),
        ro.BoolVector([case.check_resp]),
    ]
    out = r.call("design_case", *args)
    failed = out.get("error") is not None or out.get("resp_error") is not None
    if failed != case.expect_error:
        raise RuntimeError(f"{case.name}: lme4 {'refused' if failed else 'accepted'} it, but "
                           f"the case expects {'an error' if case.expect_error else 'success'}: "
                           f"{out.get('error') or out.get('resp_error')}")
    if failed:  # keep what lme4 said, not the half-built design (it may hold -Inf)
        return {"error": out.get("error"), "resp_error": out.get("resp_error"),
                "parsed": out.get("parsed")}
    return out


def generate(out_path: Path) -> Path:
    r = session()
    code = resources.files("parity").joinpath("r/design.R").read_text(encoding="utf-8")
    r.ro.r(code)
    synthetic = {name: make() for name, make in SYNTHETIC.items()}
    cases = []
    for case in all_cases():
        ds = load_dataset(case.data, synthetic)
        print(f"{case.name}: {case.formula}", flush=True)
        cases.append({
            "name": case.name,
            "formula": case.formula,
            "data": case.data,
            "data_sha256": data_digest(ds),
            "weights": case.weights,
            "offset": case.offset,
            "as_character": list(case.as_character),
            "family": case.family,
            "expect_error": case.expect_error,
            "notes": case.notes,
            "r": run_case(r, case, ds),
        })
    ro = r.ro
    deparse = r.call("design_deparse", ro.StrVector(list(DEPARSE)))
    numbers = r.call("design_as_character", ro.FloatVector(list(NUMBERS)))
    terms = r.call("design_terms", ro.StrVector(list(TERMS)))
    contr = r.call("design_contr_poly", ro.IntVector(list(range(2, 13))))
    v = r.versions
    doc = {
        "schema_version": SCHEMA_VERSION,
        "provenance": {
            **v,
            "generated_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generator": "scripts/generate_design_fixtures.py",
            "python": platform.python_version(),
            "locale": "C",
        },
        "datasets": {name: ds.to_json() for name, ds in synthetic.items()},
        "cases": cases,
        "deparse": [{"text": t, "r": d} for t, d in zip(DEPARSE, deparse, strict=True)],
        "numbers": [{"value": x, "r": d} for x, d in zip(NUMBERS, numbers, strict=True)],
        "terms": terms,
        "contr_poly": contr,
    }
    text = json.dumps(doc, allow_nan=False, separators=(",", ":")) + "\n"
    return write_text_atomic(out_path, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file")
    args = ap.parse_args(argv)
    path = generate(args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
