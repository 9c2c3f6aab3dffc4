"""jitgrad's CPU backend side by side with numpy, numexpr, hand-written numba (and JAX /
PyTorch when importable), in one process, interleaved round by round.

    python bench/bench_cpu.py [--repeat 15] [--workloads relu gelu dense xent] [--quick]

Workloads (float32):
* relu(x*y+z) and tanh-GELU on 2^24 and 2^12 elements  -> GB/s vs STREAM triad;
* relu(X @ W + b) at 512x1024x1024 and 128x64x256      -> GFLOP/s vs the BLAS GEMM rate;
* softmax cross-entropy over 4096x1000 logits, forward and forward+backward (grad wrt
  the logits)                                           -> GB/s vs triad.
Candidates: numpy eager, numexpr (with numpy for the matmul and the row reductions),
hand-written numba loops into reused buffers, jitgrad's cpu backend, ``jax.jit`` and
PyTorch eager (the last two skipped with a note when not installed; ``pip install -e
".[bench]"``). Every candidate's answer is checked against numpy before timing, which
also compiles the jitted ones; ``time_interleaved`` warms each up again. JAX calls
``block_until_ready`` inside the timed call. Ratios are paired per round against numpy
eager ("x numpy"; > 1 = slower), jitgrad ("x jitgrad"), JAX and PyTorch.
Times include jitgrad's per-call dispatch (the jitted function called from Python).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import baselines as bl  # noqa: E402  (elementwise candidates shared with bench/baselines.py)

from jitgrad.benchmarking import format_table, measure_ceilings, time_interleaved  # noqa: E402
from jitgrad.benchmarking.report import format_time  # noqa: E402

Unavailable = bl.Unavailable
SQRT_2_OVER_PI = bl.SQRT_2_OVER_PI


# ----------------------------------------------------------------------------- jitgrad

def _jitgrad():
    import jitgrad
    import jitgrad.numpy as jnp
    return jitgrad, jnp


def jitgrad_elementwise(w: bl.Workload, inputs):
    jitgrad, jnp = _jitgrad()
    if w.reference is bl.relu_fma_np:
        f = lambda x, y, z: jnp.maximum(x * y + z, 0)   # noqa: E731
    else:
        f = lambda x: 0.5 * x * (1.0 + jnp.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))  # noqa
    jf = jitgrad.jit(f, backend="cpu")
    args = [jnp.asarray(a) for a in inputs]
    return lambda: jf(*args)


def _jax_blocking(f, args) -> Callable[[], object]:
    """Call the jitted ``f`` and wait for every output: XLA dispatches asynchronously."""
    import jax
    return lambda: jax.block_until_ready(f(*args))


def jax_elementwise(w: bl.Workload, inputs):
    """``bl.make_jax``'s jitted function, blocked on inside the call."""
    run = bl.make_jax(w, inputs)
    import jax
    return lambda: jax.block_until_ready(run())


# ----------------------------------------------------------------------------- elementwise

def run_elementwise(key: str, n: int, repeat: int, ceilings) -> str:
    w = bl.WORKLOADS[key]
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(n, dtype=np.float32) for _ in range(w.n_inputs)]
    expected = w.reference(*inputs)
    makers = {"numpy eager": bl.make_numpy, "numexpr (out=)": bl.make_numexpr,
              "numba prange (out=)": bl.make_numba, "jitgrad cpu": jitgrad_elementwise,
              "jax.jit": jax_elementwise, "torch eager": bl.make_torch}
    fns, notes = _build(makers, lambda make: make(w, inputs), expected, rtol=1e-4, atol=1e-5)
    nbytes = w.bytes_moved(n)
    res = time_interleaved(fns, repeat=repeat, warmup=2, gap_s=0.05)
    rows = []
    for name, r in res.items():
        rows.append(_row(name, r, res, **{"GB/s": nbytes / r.median / 1e9,
                                          "% triad": 100 * nbytes / r.median / 1e9 / ceilings.triad_gbs}))
    title = f"{w.name}, n=2^{int(math.log2(n))} float32 ({nbytes / 2**20:.3g} MiB moved), {repeat} rounds"
    return _table(title, rows, ["GB/s", "% triad"], notes)


# ----------------------------------------------------------------------------- dense layer

_NUMBA_DENSE = {}


def _numba_dense():
    if "k" not in _NUMBA_DENSE:
        import numba

        @numba.njit(cache=True)
        def dense(x, w, b, out):
            np.dot(x, w, out)
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    v = out[i, j] + b[j]
                    out[i, j] = v if v > 0 else np.float32(0)
        _NUMBA_DENSE["k"] = dense
    return _NUMBA_DENSE["k"]


def run_dense(m: int, k: int, n: int, repeat: int, ceilings) -> str:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = (rng.standard_normal((k, n), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    expected = np.maximum(x @ w + b, 0)
    out = np.empty((m, n), np.float32)

    def numba_dense():
        kern = _numba_dense()
        return lambda: (kern(x, w, b, out), out)[1]

    def jitgrad_dense():
        jitgrad, jnp = _jitgrad()
        jf = jitgrad.jit(lambda x, w, b: jnp.maximum(x @ w + b, 0), backend="cpu")
        args = [jnp.asarray(a) for a in (x, w, b)]
        return lambda: jf(*args)

    def jax_dense():
        try:
            import jax
            import jax.numpy as jjnp
        except ImportError:
            raise Unavailable("jax not installed") from None
        f = jax.jit(lambda x, w, b: jjnp.maximum(x @ w + b, 0))
        args = [jax.device_put(a) for a in (x, w, b)]
        return _jax_blocking(f, args)

    def numexpr_dense():
        try:
            import numexpr as ne
        except ImportError:
            raise Unavailable("numexpr not installed") from None
        mm = np.empty((m, n), np.float32)
        names = {"t": mm, "b": b, "zero": np.float32(0)}   # b broadcasts along the rows

        def run():
            np.dot(x, w, out=mm)   # numexpr has no matmul: BLAS, then the fused epilogue
            return ne.evaluate("where(t + b > zero, t + b, zero)", local_dict=names, out=out)
        return run

    def torch_dense():
        try:
            import torch
        except ImportError:
            raise Unavailable("torch not installed") from None
        args = [torch.from_numpy(a) for a in (x, w, b)]
        return lambda: torch.relu(args[0] @ args[1] + args[2])

    makers = {"numpy eager": lambda: (lambda: np.maximum(x @ w + b, 0)),
              "np.dot only (out=)": lambda: (lambda: np.dot(x, w, out=out)),
              "np.dot + numexpr (out=)": numexpr_dense,
              "numba np.dot+loop (out=)": numba_dense, "jitgrad cpu": jitgrad_dense,
              "jax.jit": jax_dense, "torch eager": torch_dense}
    fns, notes = _build(makers, lambda make: make(), expected, rtol=1e-4, atol=1e-4,
                        skip_check={"np.dot only (out=)"})
    res = time_interleaved(fns, repeat=repeat, warmup=2, gap_s=0.05)
    flops = 2.0 * m * k * n
    rows = [_row(name, r, res, **{"GFLOP/s": flops / r.median / 1e9,
                                  "% GEMM": 100 * flops / r.median / 1e9 / ceilings.gemm_f32_gflops})
            for name, r in res.items()]
    title = f"relu(X @ W + b), X {m}x{k}, W {k}x{n}, float32, {repeat} rounds"
    return _table(title, rows, ["GFLOP/s", "% GEMM"], notes)


# ----------------------------------------------------------------------------- cross-entropy

def _xent_np(logits, labels):
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(np.sum(labels * (z - lse), axis=1))


def _xent_grad_np(logits, labels):
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    z = logits - m
    loss = -np.mean(np.sum(labels * (z - np.log(s)), axis=1))
    return loss, (e / s * labels.sum(axis=1, keepdims=True) - labels) / logits.shape[0]


_NUMBA_XENT = {}


def _numba_xent():
    if "k" not in _NUMBA_XENT:
        import numba

        @numba.njit(parallel=True, cache=True)
        def xent_grad(logits, labels, grad):
            n, c = logits.shape
            losses = np.empty(n, np.float32)
            inv_n = np.float32(1.0 / n)
            for i in numba.prange(n):
                m = logits[i, 0]
                for j in range(c):
                    m = max(m, logits[i, j])
                s = np.float32(0)
                ysum = np.float32(0)
                for j in range(c):
                    s += math.exp(logits[i, j] - m)
                    ysum += labels[i, j]
                ls = math.log(s)
                acc = np.float32(0)
                for j in range(c):
                    z = logits[i, j] - m
                    acc += labels[i, j] * (z - ls)
                    grad[i, j] = (math.exp(z) / s * ysum - labels[i, j]) * inv_n
                losses[i] = -acc
            return losses.mean()

        @numba.njit(parallel=True, cache=True)
        def xent(logits, labels):
            n, c = logits.shape
            losses = np.empty(n, np.float32)
            for i in numba.prange(n):
                m = logits[i, 0]
                for j in range(c):
                    m = max(m, logits[i, j])
                s = np.float32(0)
                for j in range(c):
                    s += math.exp(logits[i, j] - m)
                ls = math.log(s)
                acc = np.float32(0)
                for j in range(c):
                    acc += labels[i, j] * (logits[i, j] - m - ls)
                losses[i] = -acc
            return losses.mean()
        _NUMBA_XENT["k"] = xent_grad
        _NUMBA_XENT["fwd"] = xent
    return _NUMBA_XENT["k"], _NUMBA_XENT["fwd"]


def run_xent(n: int, c: int, repeat: int, ceilings, backward: bool) -> str:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n, c), dtype=np.float32) * 3
    labels = np.eye(c, dtype=np.float32)[rng.integers(0, c, n)]
    if backward:
        expected = _xent_grad_np(logits, labels)
    else:
        expected = np.float32(_xent_np(logits, labels))
    grad_buf = np.empty_like(logits)

    def numba_xent():
        kern, fwd = _numba_xent()
        if not backward:
            return lambda: np.float32(fwd(logits, labels))
        return lambda: (kern(logits, labels, grad_buf), grad_buf)

    def numexpr_xent():
        try:
            import numexpr as ne
        except ImportError:
            raise Unavailable("numexpr not installed") from None
        e_buf = np.empty_like(logits)
        inv_n = np.float32(1.0 / n)

        def run():
            # numexpr fuses the elementwise passes; the row reductions stay in numpy.
            m = logits.max(axis=1, keepdims=True)
            ne.evaluate("exp(z - m)", local_dict={"z": logits, "m": m}, out=e_buf)
            s = e_buf.sum(axis=1, keepdims=True)
            ls = np.log(s)
            picked = ne.evaluate("sum(y * (z - m - ls))",
                                 local_dict={"y": labels, "z": logits, "m": m, "ls": ls})
            loss = np.float32(-picked * inv_n)
            if not backward:
                return loss
            ysum = labels.sum(axis=1, keepdims=True)
            ne.evaluate("(e / s * ysum - y) * inv_n", out=grad_buf,
                        local_dict={"e": e_buf, "s": s, "ysum": ysum, "y": labels, "inv_n": inv_n})
            return loss, grad_buf
        return run

    def torch_xent():
        try:
            import torch
        except ImportError:
            raise Unavailable("torch not installed") from None
        z0, y = torch.from_numpy(logits), torch.from_numpy(labels)
        # Probability targets: mean over rows of -sum(y * log_softmax(z)), as the others.
        loss_fn = torch.nn.functional.cross_entropy
        if not backward:
            return lambda: loss_fn(z0, y)

        def run():
            z = z0.detach().requires_grad_()
            loss = loss_fn(z, y)
            (grad,) = torch.autograd.grad(loss, z)
            return loss.detach(), grad
        return run

    def jitgrad_xent():
        jitgrad, jnp = _jitgrad()

        def loss(z, y):
            m = jnp.max(z, axis=-1, keepdims=True)
            logp = z - m - jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))
            return -jnp.mean(jnp.sum(y * logp, axis=-1))
        if backward:
            if not hasattr(jitgrad, "value_and_grad"):
                raise Unavailable("jitgrad.value_and_grad does not exist yet")
            f = jitgrad.jit(jitgrad.value_and_grad(loss), backend="cpu")
        else:
            f = jitgrad.jit(loss, backend="cpu")
        args = [jnp.asarray(logits), jnp.asarray(labels)]
        return lambda: f(*args)

    def jax_xent():
        try:
            import jax
            import jax.numpy as jjnp
        except ImportError:
            raise Unavailable("jax not installed") from None

        def loss(z, y):
            return -jjnp.mean(jjnp.sum(y * jax.nn.log_softmax(z, axis=-1), axis=-1))
        f = jax.jit(jax.value_and_grad(loss) if backward else loss)
        args = [jax.device_put(logits), jax.device_put(labels)]
        return _jax_blocking(f, args)

    np_fn = (lambda: _xent_grad_np(logits, labels)) if backward else (lambda: _xent_np(logits, labels))
    makers = {"numpy eager": lambda: np_fn, "numexpr+numpy (out=)": numexpr_xent,
              "numba prange row kernel (out=)": numba_xent,
              "jitgrad cpu": jitgrad_xent, "jax.jit": jax_xent, "torch eager": torch_xent}
    fns, notes = _build(makers, lambda make: make(), expected, rtol=2e-4, atol=1e-6)
    res = time_interleaved(fns, repeat=repeat, warmup=2, gap_s=0.05)
    nbytes = 2 * logits.nbytes + (logits.nbytes if backward else 0)
    rows = [_row(name, r, res, **{"GB/s": nbytes / r.median / 1e9,
                                  "% triad": 100 * nbytes / r.median / 1e9 / ceilings.triad_gbs})
            for name, r in res.items()]
    what = "forward + gradient wrt logits" if backward else "forward (loss)"
    title = f"softmax cross-entropy {n}x{c} float32, {what}, {repeat} rounds"
    return _table(title, rows, ["GB/s", "% triad"], notes)


# ----------------------------------------------------------------------------- shared

def _as_list(x):
    if isinstance(x, (tuple, list)):
        return [np.asarray(bl._as_numpy(v)) for v in x]
    return [np.asarray(bl._as_numpy(x))]


# Candidates left out on request (--skip): names containing any of these strings.
_LEFT_OUT: list[str] = []


def _build(makers: dict, call: Callable, expected, rtol, atol, skip_check=()):
    """Construct and check every candidate; returns (callables, notes on skipped ones)."""
    fns, notes = {}, []
    want = _as_list(expected)
    for name, make in makers.items():
        if any(s in name for s in _LEFT_OUT):
            notes.append(f"  left out: {name} (--skip)")
            continue
        try:
            fn = call(make)
            if name not in skip_check:
                got = _as_list(fn())   # compiles outside the timed region
                for g, e in zip(got, want):
                    if g.dtype != np.float32 and g.shape:
                        raise Unavailable(f"returned {g.dtype}, expected float32")
                    if not np.allclose(g, e, rtol=rtol, atol=atol):
                        raise Unavailable(f"wrong answer (max abs err {np.max(np.abs(g - e)):.3g})")
        except Unavailable as e:
            notes.append(f"  skipped {name}: {e}")
            continue
        fns[name] = fn
    return fns, notes


# Paired-ratio columns: column name -> the candidate it divides by.
RATIO_COLUMNS = {"x numpy": "numpy eager", "x jitgrad": "jitgrad cpu", "x jax": "jax.jit",
                 "x torch": "torch eager"}


def _row(name, r, res, **extra) -> dict:
    row = {"impl": name, "median": format_time(r.median), "min": format_time(r.min)}
    row.update(extra)
    for col, ref_name in RATIO_COLUMNS.items():
        ref = res.get(ref_name)
        row[col] = f"{r.paired_ratio(ref):.2f}x" if ref is not None else None
    return row


def _table(title, rows, rate_cols, notes) -> str:
    present = [c for c in RATIO_COLUMNS if any(row.get(c) is not None for row in rows)]
    cols = ["impl", "median", "min"] + rate_cols + present
    return "\n".join([title, format_table(rows, cols)] + notes)


def _limit_threads(n: int) -> None:
    """Give every library ``n`` threads, so that their pools do not fight over the cores.

    XLA reads its flags once, when jax is first imported (here, lazily, by the jax
    candidates), so they are set in the environment before that.
    """
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n)
    except ImportError:
        print("note: threadpoolctl is not installed; BLAS threads not limited")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--workloads", nargs="+", default=["relu", "gelu", "dense", "xent"],
                        choices=["relu", "gelu", "dense", "xent"])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (numba, BLAS, PyTorch, XLA); default: "
                             "each library's own default")
    parser.add_argument("--skip", nargs="+", default=[], metavar="TEXT",
                        help="leave out candidates whose name contains TEXT (e.g. 'numba np.dot':"
                             " its scipy OpenBLAS pool keeps spinning and slows the GEMM timed"
                             " after it, whoever's it is)")
    args = parser.parse_args(argv)
    _LEFT_OUT[:] = args.skip
    if args.threads is not None:
        _limit_threads(args.threads)
    ceilings = measure_ceilings(quick=args.quick)
    import numba
    print(f"{os.cpu_count()} cores, threads per library: {args.threads or 'default'}; "
          f"numba {numba.__version__} (threading layer "
          f"{numba.config.THREADING_LAYER}); triad {ceilings.triad_gbs:.1f} GB/s, "
          f"GEMM f32 {ceilings.gemm_f32_gflops:.0f} GFLOP/s (cached ceilings); "
          f"load average {os.getloadavg()[0]:.1f}\n")
    sizes = [1 << 12] if args.quick else [1 << 24, 1 << 12]
    for key in ("relu", "gelu"):
        if key in args.workloads:
            for n in sizes:
                print(run_elementwise(key, n, args.repeat, ceilings), "\n", flush=True)
    if "dense" in args.workloads:
        shapes = [(128, 64, 256)] if args.quick else [(512, 1024, 1024), (128, 64, 256)]
        for m, k, n in shapes:
            print(run_dense(m, k, n, args.repeat, ceilings), "\n", flush=True)
    if "xent" in args.workloads:
        n, c = (256, 100) if args.quick else (4096, 1000)
        for backward in (False, True):
            print(run_xent(n, c, args.repeat, ceilings, backward), "\n", flush=True)


if __name__ == "__main__":
    main()
