"""Benchmark jitgrad's cuda kernels on a GPU: achieved GB/s and GFLOP/s per kernel kind.

    python bench/cuda/bench_cuda.py                  # GPU sizes (needs an NVIDIA GPU)
    python bench/cuda/bench_cuda.py --size large     # bigger arrays / matrices
    python bench/cuda/bench_cuda.py --json out.json  # also write the numbers
    NUMBA_ENABLE_CUDASIM=1 python bench/cuda/bench_cuda.py --size tiny   # smoke test, no GPU

For each kernel kind (elementwise, reduction, row-wise, matmul with epilogue, gather) it
times a jitted program on arrays already on the GPU, and reports:

* **GB/s**: the bytes the kernel must move (inputs read once, outputs written once)
  divided by its time, and that as a fraction of the GPU's **measured copy bandwidth**
  (a device-to-device copy of the same size: read + write);
* **GFLOP/s** for the matmul, against a **cuBLAS-class matmul** of the same shape from
  CuPy or PyTorch when one of them is installed (``n/a`` otherwise);
* the time of one **MLP training step** (forward, backward, SGD update; weights stay on
  the device): 64-256-256-10 at batch 128, and 1024-wide at batch 1024 with ``large``.

Timing uses ``jitgrad.benchmarking.time_interleaved`` (warm-up, interleaved rounds,
median per call, each call synchronised). Under the simulator the numbers only show
that the script works end to end.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402
from jitgrad import jit, value_and_grad  # noqa: E402
from jitgrad.benchmarking.timing import time_interleaved  # noqa: E402

SIZES = {
    # elementwise/reduction length, row-wise (rows, cols), matmul (M, K, N), gather (rows, width, n),
    # MLP (widths, batch)
    "tiny": dict(n=256, rows=(4, 40), mm=(16, 12, 20), gather=(32, 8, 16),
                 mlp=((8, 16, 16, 4), 8), repeat=1, warmup=1, inner=1),
    "small": dict(n=1 << 24, rows=(4096, 1024), mm=(2048, 2048, 2048), gather=(50000, 256, 8192),
                  mlp=((64, 256, 256, 10), 128), repeat=7, warmup=2, inner=None),
    "large": dict(n=1 << 27, rows=(16384, 4096), mm=(8192, 8192, 8192), gather=(500000, 512, 65536),
                  mlp=((1024, 1024, 1024, 10), 1024), repeat=7, warmup=2, inner=None),
}


@dataclass
class Row:
    """One line of the report."""

    name: str
    kind: str
    ms: float
    gb_s: float | None = None
    of_copy: float | None = None
    gflop_s: float | None = None
    of_blas: float | None = None
    note: str = ""


class _Synced:
    """Wraps a result so that ``block_until_ready`` waits for the whole device."""

    def __init__(self, sync):
        self._sync = sync

    def block_until_ready(self):
        self._sync()
        return self


def _blas_matmul(M: int, K: int, N: int, timing: dict):
    """A cuBLAS matmul of the same shape via CuPy or PyTorch, timed, or (None, reason)."""
    try:
        import cupy
        a = cupy.random.standard_normal((M, K), dtype=cupy.float32)
        b = cupy.random.standard_normal((K, N), dtype=cupy.float32)
        sync = cupy.cuda.Device().synchronize
        res = time_interleaved({"cupy": lambda: (a @ b, _Synced(sync))}, **timing)
        return res["cupy"].median, "CuPy"
    except Exception:  # noqa: BLE001 - not installed, or no GPU for it
        pass
    try:
        import torch
        if torch.cuda.is_available():
            a = torch.randn(M, K, device="cuda")
            b = torch.randn(K, N, device="cuda")
            res = time_interleaved({"torch": lambda: (a @ b, _Synced(torch.cuda.synchronize))},
                                   **timing)
            return res["torch"].median, "PyTorch"
    except Exception:  # noqa: BLE001
        pass
    return None, "no CuPy/PyTorch GPU matmul here"


def run(size: str = "small") -> tuple[list[Row], dict]:
    """Run every benchmark at ``size``; returns the rows and a dict about the device."""
    from numba import cuda
    from jitgrad.backends.cuda import runtime
    cfg = SIZES[size]
    timing = dict(repeat=cfg["repeat"], warmup=cfg["warmup"], inner=cfg["inner"], gap_s=0.0)
    gpu = jitgrad.devices("cuda")[0]
    rng = np.random.default_rng(0)

    def put(*shape, scale=1.0):
        return jitgrad.device_put((rng.standard_normal(shape) * scale).astype(np.float32), gpu)

    def time_one(name, fn):
        return time_interleaved({name: fn}, **timing)[name].median

    # The ceiling: a device-to-device copy (bytes read + bytes written).
    n = cfg["n"]
    src = runtime.to_device(np.ones(n, np.float32))
    dst = runtime.empty(n, np.float32)
    t_copy = time_one("copy", lambda: (dst.copy_to_device(src), _Synced(cuda.synchronize)))
    copy_gb_s = 2 * 4 * n / t_copy / 1e9
    rows = [Row("device-to-device copy", "ceiling", t_copy * 1e3, copy_gb_s, 1.0,
                note=f"{n} float32")]

    def add(name, kind, fn, nbytes=None, flops=None, blas=None):
        t = time_one(name, fn)
        gb = nbytes / t / 1e9 if nbytes else None
        row = Row(name, kind, t * 1e3, gb, gb / copy_gb_s if gb else None)
        if flops:
            row.gflop_s = flops / t / 1e9
            if blas:
                row.of_blas = row.gflop_s / (flops / blas / 1e9)
        rows.append(row)
        return row

    # elementwise: relu(x * y + z), 3 reads + 1 write
    x, y, z = put(n), put(n), put(n)
    f_ew = jit(lambda x, y, z: jnp.maximum(x * y + z, 0), backend="cuda")
    add("relu(x*y+z)", "elementwise", lambda: f_ew(x, y, z), nbytes=16 * n)
    # reduction: a full sum (two-pass), and sums of rows
    f_sum = jit(jnp.sum, backend="cuda")
    add("sum(x)", "reduction", lambda: f_sum(x), nbytes=4 * n)
    R, C = cfg["rows"]
    xr = put(R, C)
    f_rows = jit(lambda a: jnp.sum(a * a, axis=1), backend="cuda")
    add(f"sum(x*x, axis=1) {R}x{C}", "reduction", lambda: f_rows(xr), nbytes=4 * R * C + 4 * R)
    # row-wise: softmax (passes re-read the row; the minimum traffic is read + write)
    f_softmax = jit(jitgrad.nn.softmax, backend="cuda")
    add(f"softmax {R}x{C}", "rowwise", lambda: f_softmax(xr), nbytes=8 * R * C)
    g, b = put(C), put(C)

    def layer_norm(a, g, b):
        mu = jnp.mean(a, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(a - mu), axis=-1, keepdims=True)
        return (a - mu) * jitgrad.lax.rsqrt(var + 1e-5) * g + b
    f_ln = jit(layer_norm, backend="cuda")
    add(f"layer_norm {R}x{C}", "rowwise", lambda: f_ln(xr, g, b), nbytes=8 * R * C + 8 * C)
    # matmul with a fused epilogue, against cuBLAS
    M, K, N = cfg["mm"]
    a, w, bias = put(M, K), put(K, N), put(N)
    t_blas, blas_name = (None, "simulator") if runtime.is_simulator() else _blas_matmul(M, K, N, timing)
    f_mm = jit(lambda a, w, b: jnp.maximum(a @ w + b, 0), backend="cuda")
    row = add(f"relu(A@W+b) {M}x{K}x{N}", "matmul", lambda: f_mm(a, w, bias),
              nbytes=4 * (M * K + K * N + N + M * N), flops=2 * M * K * N, blas=t_blas)
    row.note = f"vs {blas_name}" if t_blas else blas_name
    # gather: embedding lookup
    V, D, G = cfg["gather"]
    table = put(V, D)
    idx = jitgrad.device_put(rng.integers(0, V, G).astype(np.int32), gpu)
    f_gather = jit(lambda t, i: t[i], backend="cuda")
    add(f"gather {G} rows of {V}x{D}", "opaque", lambda: f_gather(table, idx),
        nbytes=4 * (2 * G * D + G))
    # an MLP training step (weights stay on the device)
    widths, batch = cfg["mlp"]
    params = [(put(i, o, scale=(2 / i) ** 0.5), put(o, scale=0.0)) for i, o in zip(widths, widths[1:])]
    xb = put(batch, widths[0])
    yb = jitgrad.device_put(np.eye(widths[-1], dtype=np.float32)[rng.integers(0, widths[-1], batch)], gpu)

    def loss(params, x, y):
        for i, (w_, b_) in enumerate(params):
            x = x @ w_ + b_
            if i < len(params) - 1:
                x = jnp.maximum(x, 0)
        return -jnp.mean(jnp.sum(y * jitgrad.nn.log_softmax(x), axis=-1))

    @jit
    def step(params, x, y):
        l, grads = value_and_grad(loss)(params, x, y)
        return jitgrad.tree.map(lambda p, g_: p - 0.01 * g_, params, grads), l
    step_cuda = jit(step, backend="cuda")
    state = {"p": params}

    def one_step():
        state["p"], l_ = step_cuda(state["p"], xb, yb)
        return l_
    flops = 6 * batch * sum(i * o for i, o in zip(widths, widths[1:]))
    row = add(f"MLP train step {'-'.join(map(str, widths))} batch {batch}", "training", one_step,
              flops=flops)
    row.note = "forward + backward + SGD, weights on the device"
    info = {"device": str(gpu), "device_kind": gpu.device_kind, "size": size,
            "simulator": runtime.is_simulator(), "copy_gb_s": copy_gb_s}
    return rows, info


def format_rows(rows: list[Row], info: dict) -> str:
    """The report as a text table."""
    def f(v, fmt):
        width = fmt.rstrip("f%").split(".")[0]
        return format("-", f">{width}") if v is None else format(v, fmt)
    head = f"jitgrad cuda kernels on {info['device_kind']} ({info['device']}), size={info['size']}"
    if info["simulator"]:
        head += "  [numba CUDA simulator: timings are meaningless]"
    lines = [head, f"{'benchmark':44s} {'kind':12s} {'ms':>10s} {'GB/s':>9s} {'of copy':>8s} "
                   f"{'GFLOP/s':>9s} {'of BLAS':>8s}  note"]
    for r in rows:
        lines.append(f"{r.name:44s} {r.kind:12s} {r.ms:10.3f} {f(r.gb_s, '9.1f')} "
                     f"{f(r.of_copy, '8.0%')} {f(r.gflop_s, '9.1f')} {f(r.of_blas, '8.0%')}  {r.note}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    rows, info = run(args.size)
    print(format_rows(rows, info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": [asdict(r) for r in rows]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
