"""The ``jitgrad`` command: ``jitgrad bench`` (kernel benchmarks) and ``jitgrad explain``.

    jitgrad bench [KERNEL[@SIZE] ... | MODULE:FUNCTION] [--shape 128x64:f32 ...]
                  [--backend cpu|cuda|reference] [--sizes S ...] [--tiny] [--repeat N]
                  [--warmup N] [--compare numpy,numexpr,jax,torch] [--ceilings full|quick|none]
                  [--refresh-ceilings] [--json FILE] [--csv FILE] [--plot FILE.png] [--list]
                  [--no-progress]
    jitgrad explain MODULE:FUNCTION --shape 128x64:f32 ... [--backend B] [--profile] [--dot FILE]

``python -m jitgrad ...`` is the same command. Without kernels, ``bench`` runs the whole
built-in suite (``jitgrad bench --list`` shows it) at each kernel's default sizes.

For each kernel and size, ``bench`` measures the first call (trace + optimise + compile +
one run: "compile") on its own, then times the steady state with ``time_interleaved``
side by side with the comparisons, in this process, round by round. It reports the
median and the p10-p90 spread, the bytes and flops the kernel must move and do, GB/s,
GFLOP/s, the percentage of this machine's roofline (``measure_ceilings``: STREAM triad
and BLAS GEMM rate, measured once and cached per machine) and the paired speedup against
each comparison (their time / jitgrad's time: above 1 means jitgrad is faster). Every
result is checked against the numpy reference first; a comparison that gives a different
answer is dropped with a note. For ``MODULE:FUNCTION`` the "numpy" comparison is the
function itself run eagerly (each jitgrad operation by its numpy implementation), the
bytes are its arguments and results, and the flops are counted on its optimised IR.

Exit status: 0 when every requested kernel ran or was unavailable (slow is not failure);
1 when a jitgrad kernel failed (an exception, or a wrong answer); 2 for bad arguments
(unknown kernel, bad shape or size string, unknown or unavailable backend), reported on
one line of stderr.

JSON output (``--json FILE``), schema_version 1::

    {
      "schema_version": 1,
      "tool": "jitgrad bench",
      "jitgrad_version": str,
      "created_at": str,                     # ISO-8601 UTC
      "argv": [str, ...],
      "backend": str,                        # the backend jit compiled for
      "settings": {"repeat": int, "warmup": int, "compare": [str, ...]},
      "machine": {...},                      # jitgrad.benchmarking.machine_info()
      "ceilings": null | {"triad_gbs": float, "copy_gbs": float, "gemm_f32_gflops": float,
                          "gemm_f64_gflops": float, "quick": bool, "measured_at": str},
      "missing_libraries": {name: reason},   # comparisons that could not be imported
      "results": [
        {
          "kernel": str, "size": str, "description": str, "dtype": str,
          "status": "ok" | "unavailable" | "failed",
          "reason": null | str,              # why unavailable / failed
          "bytes": null | int, "flops": null | int,
          "compile_s": null | float,         # first call: trace + passes + codegen + one run
          "median_s": null | float, "min_s": null | float,
          "p10_s": null | float, "p90_s": null | float,
          "times_s": [float, ...],           # per-call time of each timed round
          "inner": null | int,               # calls per timed block
          "gbs": null | float, "gflops": null | float,
          "roofline_pct": null | float,      # 100 * roofline time / median time
          "comparisons": {
            name: {"status": "ok" | "unavailable", "reason": null | str,
                   "median_s": null | float, "p10_s": null | float, "p90_s": null | float,
                   "speedup": null | float}  # paired median of their time / jitgrad's
          }
        }, ...
      ]
    }

The same schema as a JSON Schema document (draft 2020-12): ``jitgrad.cli.JSON_SCHEMA``.

CSV output (``--csv FILE``) has one row per result with the scalar fields above and one
``speedup_<name>`` column per comparison.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SCHEMA_VERSION = 1
COMPARISONS = ("numpy", "numexpr", "jax", "torch")
def _nullable(t: str | list) -> dict:
    return {"type": ([t] if isinstance(t, str) else list(t)) + ["null"]}


_TIME = _nullable("number")
_COMPARISON = {
    "type": "object",
    "required": ["status", "reason", "median_s", "p10_s", "p90_s", "speedup"],
    "additionalProperties": False,
    "properties": {"status": {"enum": ["ok", "unavailable"]}, "reason": _nullable("string"),
                   "median_s": _TIME, "p10_s": _TIME, "p90_s": _TIME, "speedup": _TIME},
}
_RESULT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kernel": {"type": "string"}, "size": {"type": "string"},
        "description": {"type": "string"}, "dtype": {"type": "string"},
        "status": {"enum": ["ok", "unavailable", "failed"]}, "reason": _nullable("string"),
        "bytes": _nullable("integer"), "flops": _nullable("integer"),
        "compile_s": _TIME, "median_s": _TIME, "min_s": _TIME, "p10_s": _TIME, "p90_s": _TIME,
        "times_s": {"type": "array", "items": {"type": "number"}},
        "inner": _nullable("integer"), "gbs": _TIME, "gflops": _TIME, "roofline_pct": _TIME,
        "comparisons": {"type": "object", "additionalProperties": _COMPARISON},
    },
}
_RESULT["required"] = list(_RESULT["properties"])
# The JSON Schema (draft 2020-12) of ``--json`` files, matching the module docstring.
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "jitgrad bench results",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "tool": {"const": "jitgrad bench"},
        "jitgrad_version": {"type": "string"},
        "created_at": {"type": "string"},
        "argv": {"type": "array", "items": {"type": "string"}},
        "backend": {"type": "string"},
        "settings": {
            "type": "object", "required": ["repeat", "warmup", "compare"],
            "additionalProperties": False,
            "properties": {"repeat": {"type": "integer"}, "warmup": {"type": "integer"},
                           "compare": {"type": "array", "items": {"enum": list(COMPARISONS)}}}},
        "machine": {"type": "object"},
        "ceilings": {
            "type": ["object", "null"],
            "required": ["triad_gbs", "copy_gbs", "gemm_f32_gflops", "gemm_f64_gflops", "quick",
                         "measured_at"],
            "additionalProperties": False,
            "properties": {"triad_gbs": {"type": "number"}, "copy_gbs": {"type": "number"},
                           "gemm_f32_gflops": {"type": "number"},
                           "gemm_f64_gflops": {"type": "number"}, "quick": {"type": "boolean"},
                           "measured_at": {"type": "string"}}},
        "missing_libraries": {"type": "object", "additionalProperties": {"type": "string"}},
        "results": {"type": "array", "items": _RESULT},
    },
}
JSON_SCHEMA["required"] = list(JSON_SCHEMA["properties"])


# Short dtype spellings accepted in --shape (numpy names work too).
_DTYPES = {"f16": "float16", "f32": "float32", "f64": "float64", "i8": "int8", "i16": "int16",
           "i32": "int32", "i64": "int64", "u8": "uint8", "u16": "uint16", "u32": "uint32",
           "u64": "uint64", "bool": "bool"}


class UsageError(Exception):
    """A bad command line: printed as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``jitgrad bench: error: ...``) and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


# ----------------------------------------------------------------------------- arguments

def parse_shape(text: str) -> tuple[tuple[int, ...], np.dtype]:
    """``128x64:f32`` -> ((128, 64), float32). ``scalar:f32``/``:f32`` is a scalar; the
    dtype defaults to float32."""
    dims, _, dt = text.strip().partition(":")
    dt = dt.strip() or "f32"
    try:
        dtype = np.dtype(_DTYPES.get(dt.lower(), dt))
    except TypeError:
        raise UsageError(f"bad shape {text!r}: unknown dtype {dt!r} (use f32, f64, i32, bool, ...)") from None
    d = dims.strip().lower()
    if d in ("", "scalar", "()"):
        return (), dtype
    if not re.fullmatch(r"\d+(x\d+)*", d):
        raise UsageError(f"bad shape {text!r}: expected dimensions like 128x64 and an optional "
                         ":dtype, e.g. 128x64:f32")
    return tuple(int(p) for p in d.split("x")), dtype


def random_input(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """A random array for a user function's argument."""
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0, 10, shape).astype(dtype)
    raise UsageError(f"cannot make random inputs of dtype {dtype.name}")


def load_function(spec: str):
    """``package.module:function`` or ``path/to/file.py:function`` -> the function."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise UsageError(f"bad function {spec!r}: expected MODULE:FUNCTION")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise UsageError(f"no such file: {module_name}")
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules.setdefault(path.stem, module)
            mod_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())    # as `python -m` does
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except ImportError as e:
        raise UsageError(f"cannot import {module_name!r}: {e}") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise UsageError(f"{spec} is not callable")
    return fn


def check_backend(name: str | None) -> str:
    """The backend to compile for; UsageError if it is unknown or cannot run here."""
    from . import backends
    from .core.config import config
    name = name or config.jax_platform_name
    if name not in backends.available():
        raise UsageError(f"unknown or unavailable backend {name!r} (available: "
                         f"{', '.join(backends.available())})")
    try:
        module = backends.get(name)
    except Exception as e:   # an ImportError, or numba.cuda failing to find a driver
        raise UsageError(f"backend {name!r} is not available here: {type(e).__name__}: {e}") from None
    is_available = getattr(module, "is_available", None)
    if callable(is_available) and not is_available():
        raise UsageError(f"backend {name!r} is not available on this machine")
    return name


def jit_for(fn, backend: str):
    """``fn`` jitted for ``backend``; a function the user jitted keeps its jit options."""
    from .api import JitFunction, jit
    if isinstance(fn, JitFunction):
        return jit(fn.fun, static_argnums=fn.static_argnums, static_argnames=fn.static_argnames,
                   donate_argnums=fn.donate_argnums, backend=backend)
    return jit(fn, backend=backend)


# ----------------------------------------------------------------------------- results

def _flat_numpy(x: Any) -> list[np.ndarray]:
    """A result (array, tuple/list/dict of them, jax/torch tensors) as flat numpy arrays."""
    if isinstance(x, (list, tuple)):
        return [a for item in x for a in _flat_numpy(item)]
    if isinstance(x, dict):
        return [a for k in sorted(x) for a in _flat_numpy(x[k])]
    if hasattr(x, "detach"):                    # torch
        x = x.detach().cpu().numpy()
    return [np.asarray(x)]


def _mismatch(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """None if ``got`` matches ``want``, else what differs."""
    g, w = _flat_numpy(got), _flat_numpy(want)
    if len(g) != len(w):
        return f"returned {len(g)} arrays, expected {len(w)}"
    for i, (a, b) in enumerate(zip(g, w)):
        if a.shape != b.shape:
            return f"output {i} has shape {a.shape}, expected {b.shape}"
        if not np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol,
                           equal_nan=True):
            err = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
            return f"wrong answer in output {i} (max abs error {err:.3g})"
    return None


def _empty_result(kernel: str, size: str, description: str = "", dtype: str = "float32") -> dict:
    return {"kernel": kernel, "size": size, "description": description, "dtype": dtype,
            "status": "ok", "reason": None, "bytes": None, "flops": None, "compile_s": None,
            "median_s": None, "min_s": None, "p10_s": None, "p90_s": None, "times_s": [],
            "inner": None, "gbs": None, "gflops": None, "roofline_pct": None, "comparisons": {}}


class Job:
    """One benchmark to run: a built-in kernel at a size, or a user's function."""

    def __init__(self, kernel: str, size: str, build):
        self.kernel, self.size, self.build = kernel, size, build


def run_job(job: Job, backend: str, compare: Sequence[str], repeat: int, warmup: int,
            ceilings, missing: dict[str, str]) -> dict:
    """Build, check and time one job; never raises for a kernel's own failure."""
    from .benchmarking import time_interleaved
    from .benchmarking.suite import Unavailable
    res = _empty_result(job.kernel, job.size)
    try:
        case = job.build()
    except Unavailable as e:
        res.update(status="unavailable", reason=str(e))
        return res
    except Exception as e:
        res.update(status="failed", reason=f"building inputs failed: {type(e).__name__}: {e}")
        return res
    res.update(description=case.description, dtype=case.dtype, bytes=case.bytes, flops=case.flops)

    # First call, on its own: tracing, passes, code generation and one run.
    try:
        jitted = jit_for(case.fn, backend)
        t0 = time.perf_counter()
        out = jitted(*case.inputs)
        _flat_numpy(out)                       # waits for the result
        res["compile_s"] = time.perf_counter() - t0
        with np.errstate(all="ignore"):
            want = case.reference(*case.inputs)
        wrong = _mismatch(out, want, case.rtol, case.atol)
        if wrong:
            raise AssertionError(f"jitgrad {wrong} against the numpy reference")
    except Exception as e:
        res.update(status="failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return res

    candidates = {"jitgrad": lambda: jitted(*case.inputs)}
    for name in compare:
        entry = {"status": "ok", "reason": None, "median_s": None, "p10_s": None, "p90_s": None,
                 "speedup": None}
        res["comparisons"][name] = entry
        if name in missing:
            entry.update(status="unavailable", reason=missing[name])
            continue
        try:
            if name == "numpy":
                ref = case.reference
                fn = lambda ref=ref: ref(*case.inputs)   # noqa: E731
            elif name in case.comparisons:
                fn = case.comparisons[name](case.inputs)
            else:
                raise Unavailable(f"no {name} version of this kernel")
            with np.errstate(all="ignore"):
                wrong = _mismatch(fn(), want, case.rtol, case.atol)
            if wrong:
                raise Unavailable(wrong)
        except Unavailable as e:
            entry.update(status="unavailable", reason=str(e))
            if "not installed" in str(e):
                missing[name] = str(e)
            continue
        except Exception as e:
            entry.update(status="unavailable", reason=f"{type(e).__name__}: {e}")
            continue
        candidates[name] = fn

    try:
        with np.errstate(all="ignore"):
            timings = time_interleaved(candidates, repeat=repeat, warmup=warmup)
    except Exception as e:
        res.update(status="failed", reason=f"timing failed: {type(e).__name__}: {e}")
        return res
    mine = timings["jitgrad"]
    res.update(median_s=mine.median, min_s=mine.min, p10_s=mine.p10, p90_s=mine.p90,
               times_s=list(mine.times), inner=mine.inner)
    if case.bytes:
        res["gbs"] = case.bytes / mine.median / 1e9
    if case.flops:
        res["gflops"] = case.flops / mine.median / 1e9
    if ceilings is not None and (case.bytes or case.flops):
        res["roofline_pct"] = ceilings.percent_of_roofline(mine.median, case.bytes or 0,
                                                           case.flops or 0, case.dtype)
    for name, t in timings.items():
        if name == "jitgrad":
            continue
        res["comparisons"][name].update(median_s=t.median, p10_s=t.p10, p90_s=t.p90,
                                        speedup=t.paired_ratio(mine))
    return res


# ----------------------------------------------------------------------------- jobs

def _suite_jobs(args) -> list[Job]:
    from .benchmarking.suite import KERNELS, BadSize, build_case, parse_sizes
    jobs = []
    for target in args.targets:
        name, _, size = target.partition("@")
        kernel = KERNELS.get(name)
        if kernel is None:
            raise UsageError(f"unknown kernel {name!r} (known: {', '.join(KERNELS)}; "
                             "or give MODULE:FUNCTION)")
        sizes = [size] if size else (args.sizes or ([kernel.tiny_size] if args.tiny
                                                    else list(kernel.default_sizes)))
        try:
            parse_sizes(kernel, sizes)
        except BadSize as e:
            raise UsageError(str(e)) from None
        for s in sizes:
            jobs.append(Job(kernel.name, s, lambda k=kernel, s=s: build_case(k, s)))
    return jobs


def _function_job(spec: str, shapes: Sequence[str]) -> Job:
    from .benchmarking.cost import io_bytes, ir_flops
    from .benchmarking.suite import Case
    parsed = [parse_shape(s) for s in shapes]
    fn = load_function(spec)
    if not parsed:
        raise UsageError(f"{spec} needs --shape for each argument, e.g. --shape 128x64:f32")
    size = ",".join(f"{'x'.join(map(str, s)) or 'scalar'}:{np.dtype(d).name}" for s, d in parsed)

    def build():
        from .api import jit
        rng = np.random.default_rng(0)
        inputs = [random_input(s, d, rng) for s, d in parsed]
        plain = getattr(fn, "fun", fn)         # the Python function under a user's @jit
        closed = jit(plain, backend="reference").lower(*inputs)
        dtype = next((np.dtype(d).name for _, d in parsed if np.dtype(d).kind == "f"), "float32")

        def reference(*xs):                    # jitgrad eagerly: op by op on numpy
            return plain(*xs)
        return Case(spec, size, f"{getattr(plain, '__name__', spec)} (user function)", inputs,
                    fn, reference, bytes=io_bytes(closed.in_avals, closed.out_avals),
                    flops=ir_flops(closed), dtype=dtype)
    return Job(spec, size, build)


# ----------------------------------------------------------------------------- output

def _fmt_time(s):
    from .benchmarking.report import format_time
    return format_time(s) if s is not None else None


def _table(results: list[dict], compare: Sequence[str]) -> str:
    from .benchmarking import format_table
    rows = []
    shown = [c for c in compare if any(r["comparisons"].get(c, {}).get("speedup") is not None
                                       for r in results)]
    for r in results:
        row = {"kernel": r["kernel"], "size": r["size"]}
        if r["status"] != "ok":
            row["compile"] = r["status"]
            rows.append(row)
            continue
        row.update({
            "compile": _fmt_time(r["compile_s"]),
            "median": _fmt_time(r["median_s"]),
            "p10-p90": f"{_fmt_time(r['p10_s'])} - {_fmt_time(r['p90_s'])}",
            "GB/s": r["gbs"], "GFLOP/s": r["gflops"],
            "% roofline": r["roofline_pct"],
        })
        for c in shown:
            sp = r["comparisons"].get(c, {}).get("speedup")
            row[f"vs {c}"] = f"{sp:.2f}x" if sp is not None else None
        rows.append(row)
    cols = ["kernel", "size", "compile", "median", "p10-p90", "GB/s", "GFLOP/s", "% roofline"]
    return format_table(rows, cols + [f"vs {c}" for c in shown])


def _notes(results: list[dict], missing: dict[str, str]) -> list[str]:
    lines = []
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['kernel']} {r['size']}: {r['status']}: {r['reason']}")
    for name, why in sorted(missing.items()):
        lines.append(f"comparison {name} skipped: {why}")
    seen = set()
    for r in results:
        for name, c in r["comparisons"].items():
            if c["status"] != "ok" and name not in missing and (name, c["reason"]) not in seen:
                seen.add((name, c["reason"]))
                lines.append(f"{r['kernel']} {r['size']}: no {name} comparison: {c['reason']}")
    return lines


def _finite(x: Any) -> Any:
    """``x`` with non-finite floats replaced by None (JSON has no NaN or inf)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _write_json(path: str, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_finite(payload), f, indent=1, allow_nan=False)
        f.write("\n")


def _write_csv(path: str, results: list[dict], compare: Sequence[str]) -> None:
    fields = ["kernel", "size", "description", "dtype", "status", "reason", "bytes", "flops",
              "compile_s", "median_s", "min_s", "p10_s", "p90_s", "inner", "gbs", "gflops",
              "roofline_pct"] + [f"speedup_{c}" for c in compare]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in results:
            row = {k: r.get(k) for k in fields if not k.startswith("speedup_")}
            for c in compare:
                row[f"speedup_{c}"] = r["comparisons"].get(c, {}).get("speedup")
            w.writerow(row)


def _write_plot(path: str, results: list[dict], compare: Sequence[str]) -> str | None:
    """Bar chart of the median time of jitgrad and each comparison per kernel (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no plot written (pip install matplotlib)"
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return "no successful results to plot"
    names = ["jitgrad"] + [c for c in compare if any(
        r["comparisons"].get(c, {}).get("median_s") for r in ok)]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(ok) * len(names) / 2), 4.5))
    width = 0.8 / len(names)
    xs = np.arange(len(ok))
    for j, name in enumerate(names):
        vals = [r["median_s"] if name == "jitgrad" else r["comparisons"][name].get("median_s")
                for r in ok]
        ax.bar(xs + j * width, [v if v else 0 for v in vals], width, label=name)
    ax.set_yscale("log")
    ax.set_ylabel("median time per call (s)")
    ax.set_xticks(xs + width * (len(names) - 1) / 2)
    ax.set_xticklabels([f"{r['kernel']}\n{r['size']}" for r in ok], fontsize=8)
    ax.legend()
    ax.set_title("jitgrad bench (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ----------------------------------------------------------------------------- commands

def _bench_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jitgrad bench", description="Benchmark built-in kernels or your own function.")
    p.add_argument("targets", nargs="*", metavar="KERNEL[@SIZE]|MODULE:FUNCTION",
                   help="built-in kernels (default: all; see --list) or one MODULE:FUNCTION")
    p.add_argument("--shape", action="append", default=[], metavar="DIMS[:DTYPE]",
                   help="argument shape for MODULE:FUNCTION, once per argument, e.g. 128x64:f32")
    p.add_argument("--backend", default=None, help="cpu, cuda or reference (default: jit's default)")
    p.add_argument("--sizes", nargs="+", default=None, metavar="SIZE",
                   help="sizes for the chosen kernels (format per kernel, see --list)")
    p.add_argument("--tiny", action="store_true", help="each kernel at a tiny size (smoke test)")
    p.add_argument("--repeat", type=int, default=20, help="timed rounds (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per candidate first (default 2)")
    p.add_argument("--compare", default=",".join(COMPARISONS),
                   help="comma-separated comparisons: numpy,numexpr,jax,torch (or 'none')")
    p.add_argument("--ceilings", choices=("full", "quick", "none"), default="full",
                   help="machine ceilings for %% roofline: full (cached per machine), quick, none")
    p.add_argument("--refresh-ceilings", action="store_true",
                   help="measure the ceilings again even if cached (do it on a quiet machine)")
    p.add_argument("--json", metavar="FILE", help="write results as JSON (schema in `jitgrad.cli`)")
    p.add_argument("--csv", metavar="FILE", help="write results as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="write a bar chart of the times")
    p.add_argument("--list", action="store_true", help="list the built-in kernels and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _list_kernels() -> str:
    from .benchmarking import format_table
    from .benchmarking.suite import KERNELS
    rows = [{"kernel": k.name, "what": k.description, "size format": k.size_help,
             "default sizes": " ".join(k.default_sizes),
             "needs": ", ".join(f"jitgrad.{n}" for n in k.needs) or "-"} for k in KERNELS.values()]
    return format_table(rows, ["kernel", "what", "size format", "default sizes", "needs"])


def bench(argv: Sequence[str]) -> int:
    """``jitgrad bench``: returns the exit status."""
    args = _bench_parser().parse_args(argv)
    if args.list:
        print(_list_kernels())
        return 0
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be at least 0, got {args.warmup}")
    compare = [] if args.compare.strip().lower() in ("", "none") else \
        [c.strip().lower() for c in args.compare.split(",") if c.strip()]
    for c in compare:
        if c not in COMPARISONS:
            raise UsageError(f"unknown comparison {c!r} (choose from {', '.join(COMPARISONS)})")
    functions = [t for t in args.targets if ":" in t]
    if functions and len(args.targets) > 1:
        raise UsageError("give either built-in kernels or one MODULE:FUNCTION, not both")
    if args.shape and not functions:
        raise UsageError("--shape is for MODULE:FUNCTION; built-in kernels take --sizes")
    from .benchmarking.suite import KERNELS
    if functions:
        jobs = [_function_job(functions[0], args.shape)]
        if args.sizes:
            raise UsageError("--sizes is for built-in kernels; use --shape for MODULE:FUNCTION")
    else:
        if not args.targets:
            args.targets = list(KERNELS)
        jobs = _suite_jobs(args)
    backend = check_backend(args.backend)

    from .benchmarking import measure_ceilings, machine_info
    ceilings = None
    if args.ceilings != "none":
        quick = args.ceilings == "quick"
        print("measuring this machine's ceilings (cached per machine after the first time)...",
              file=sys.stderr, flush=True)
        ceilings = measure_ceilings(refresh=args.refresh_ceilings, quick=quick)

    missing: dict[str, str] = {}
    results = []
    progress = _progress(len(jobs), disable=args.no_progress)
    for job in jobs:
        progress.set_description(f"{job.kernel} {job.size}"[:40])
        results.append(run_job(job, backend, compare, args.repeat, args.warmup, ceilings, missing))
        progress.update(1)
    progress.close()

    header = f"jitgrad bench: backend {backend}, {args.repeat} rounds, {os.cpu_count()} cores"
    if ceilings is not None:
        header += (f"; roofline: triad {ceilings.triad_gbs:.1f} GB/s, GEMM f32 "
                   f"{ceilings.gemm_f32_gflops:.0f} GFLOP/s{' (quick)' if args.ceilings == 'quick' else ''}")
    print(header)
    load = (ceilings.details or {}).get("load_avg_1min") if ceilings is not None else None
    if isinstance(load, (int, float)) and load > 1.0:
        print(f"note: the ceilings were measured at load average {load:.1f}, so they are low; "
              "rerun with --refresh-ceilings on a quiet machine")
    print("times are per call; 'vs X' is X's time / jitgrad's time, paired by round (>1: jitgrad faster)")
    print()
    print(_table(results, compare))
    notes = _notes(results, missing)
    if notes:
        print()
        print("\n".join(notes))

    if args.json:
        _write_json(args.json, {
            "schema_version": SCHEMA_VERSION, "tool": "jitgrad bench",
            "jitgrad_version": _version(),
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "argv": list(argv), "backend": backend,
            "settings": {"repeat": args.repeat, "warmup": args.warmup, "compare": compare},
            "machine": machine_info(),
            "ceilings": None if ceilings is None else {
                "triad_gbs": ceilings.triad_gbs, "copy_gbs": ceilings.copy_gbs,
                "gemm_f32_gflops": ceilings.gemm_f32_gflops,
                "gemm_f64_gflops": ceilings.gemm_f64_gflops,
                "quick": args.ceilings == "quick", "measured_at": ceilings.measured_at},
            "missing_libraries": missing, "results": results})
    if args.csv:
        _write_csv(args.csv, results, compare)
    if args.plot:
        why = _write_plot(args.plot, results, compare)
        if why:
            print(f"note: {why}", file=sys.stderr)
    return 1 if any(r["status"] == "failed" for r in results) else 0


def _progress(total: int, disable: bool):
    try:
        from tqdm import tqdm
        return tqdm(total=total, file=sys.stderr, unit="kernel", disable=disable, leave=False)
    except ImportError:
        class _Quiet:
            def set_description(self, _): pass
            def update(self, _): pass
            def close(self): pass
        return _Quiet()


def _version() -> str:
    from . import __version__
    return __version__


def _explain_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jitgrad explain",
                description="Show what jitgrad does with a function: IR, passes, fusion, kernels.")
    p.add_argument("function", metavar="MODULE:FUNCTION")
    p.add_argument("--shape", action="append", default=[], metavar="DIMS[:DTYPE]",
                   help="argument shape, once per argument, e.g. 128x64:f32")
    p.add_argument("--backend", default=None, help="cpu, cuda or reference (default: jit's default)")
    p.add_argument("--profile", action="store_true", help="also time each kernel in a real run")
    p.add_argument("--dot", metavar="FILE", help="also write the Graphviz graph (.dot, .svg or .png)")
    return p


def explain_command(argv: Sequence[str]) -> int:
    """``jitgrad explain``: returns the exit status."""
    args = _explain_parser().parse_args(argv)
    parsed = [parse_shape(s) for s in args.shape]
    fn = load_function(args.function)
    if not parsed:
        raise UsageError(f"{args.function} needs --shape for each argument, e.g. --shape 128x64:f32")
    backend = check_backend(args.backend)
    rng = np.random.default_rng(0)
    inputs = [random_input(s, d, rng) for s, d in parsed]
    from .explain import explain, to_dot
    plain = getattr(fn, "fun", fn)
    print(explain(plain, backend=backend, profile=args.profile)(*inputs))
    if args.dot:
        result = to_dot(plain, backend=backend, path=args.dot)(*inputs)
        print(f"\nwrote {args.dot}" if not getattr(result, "message", None) else f"\n{result.message}")
    return 0


COMMANDS = {"bench": bench, "explain": explain_command}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jitgrad`` console script and ``python -m jitgrad``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0].strip().splitlines()[0])
        print("\nusage: jitgrad {bench,explain} ... (jitgrad bench --help, jitgrad explain --help)")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"jitgrad: error: unknown command {command!r} (use bench or explain)", file=sys.stderr)
        return 2
    try:
        status = COMMANDS[command](rest)
    except UsageError as e:
        print(f"jitgrad {command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:         # argparse --help
        return int(e.code or 0)
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
