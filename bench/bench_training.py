"""One MLP training step (forward, softmax cross-entropy, backward, Adam) side by side.

    python bench/bench_training.py [--repeat 15] [--sizes small large] [--append bench/RESULTS.md]

Workloads: ``small`` = 64-256-256-10 at batch 128, ``large`` = 64-1024-1024-10 at batch 1024
(float32). Candidates, all doing the same arithmetic with Adam (lr 1e-3):

* ``jitgrad[<backend>]``: a jitted step built from ``jitgrad.nn``, ``value_and_grad`` and
  ``jitgrad.optim``, for every backend that compiles here (``--backends``);
* ``numpy``: the same step written by hand in numpy (forward, backward, Adam), the floor
  any library must beat;
* ``jax``: ``jax.jit`` of the same step (with ``optax`` if importable, else hand-written
  Adam), and ``torch``: PyTorch eager with ``torch.optim.Adam`` -- each skipped with a note
  when not installed.

Every candidate is first run for a few steps outside the timed region (this compiles the
jitted ones) and its losses are compared with the numpy step's: a candidate whose
arithmetic differs (another loss, gradient or Adam update) is skipped with a note instead
of timed. JAX's step is blocked on (``block_until_ready`` of the new parameters, optimizer
state and loss) inside the timed call.

Timing uses ``jitgrad.benchmarking.time_interleaved`` (all candidates in one process,
round by round). Reported: median and min per step, and paired ratios against numpy and
against JAX and PyTorch when they ran (> 1 = slower). ``--append FILE`` appends the tables
as a Markdown section.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

from jitgrad.benchmarking import format_table, time_interleaved  # noqa: E402
from jitgrad.benchmarking.report import format_time  # noqa: E402

SIZES = {"small": ((64, 256, 256, 10), 128), "large": ((64, 1024, 1024, 10), 1024)}
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


class Unavailable(Exception):
    """A candidate cannot run here; the message says why."""


def make_data(widths, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], batch).astype(np.int32)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        params.append((w, np.zeros(fan_out, np.float32)))
    return params, x, y


# ----------------------------------------------------------------------------- candidates

def make_jitgrad(widths, batch, backend: str) -> Callable[[], object]:
    import jitgrad
    from jitgrad import nn, optim

    params0, x, y = make_data(widths, batch)
    layers = []
    for i, width in enumerate(widths[1:]):
        layers.append(nn.Dense(width))
        if i < len(widths) - 2:
            layers.append(nn.relu)
    model = nn.Sequential(layers)
    params = {f"Dense_{i}": {"kernel": w, "bias": b} for i, (w, b) in enumerate(params0)}
    opt = optim.adam(LR, B1, B2, EPS)

    def loss_fn(p):
        logits, _ = model.apply(p, {}, x)
        return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(p, s):
        loss, g = jitgrad.value_and_grad(loss_fn)(p)
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s, loss

    try:
        compiled = jitgrad.jit(step, backend=backend)
        box = [params, opt.init(params)]
        p, s, _ = compiled(*box)
    except Exception as e:   # noqa: BLE001 - report, do not crash the benchmark
        raise Unavailable(f"{type(e).__name__}: {str(e).splitlines()[0][:120]}") from None

    def run():
        box[0], box[1], loss = compiled(box[0], box[1])
        return loss
    return run


def make_numpy(widths, batch) -> Callable[[], object]:
    params, x, y = make_data(widths, batch)
    params = [list(p) for p in params]
    m = [[np.zeros_like(a) for a in p] for p in params]
    v = [[np.zeros_like(a) for a in p] for p in params]
    t = [0]
    onehot = np.eye(widths[-1], dtype=np.float32)[y]

    def run():
        acts = [x]
        for i, (w, b) in enumerate(params):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(batch), y]))
        g = (p - onehot) / np.float32(batch)
        t[0] += 1
        c1, c2 = 1 - B1 ** t[0], 1 - B2 ** t[0]
        for i in reversed(range(len(params))):
            w, b = params[i]
            gw, gb = acts[i].T @ g, g.sum(axis=0)
            if i > 0:
                g = (g @ w.T) * (acts[i] > 0)
            for j, grad in enumerate((gw, gb)):
                m[i][j] = B1 * m[i][j] + (1 - B1) * grad
                v[i][j] = B2 * v[i][j] + (1 - B2) * grad * grad
                params[i][j] = params[i][j] - LR * (m[i][j] / c1) / (np.sqrt(v[i][j] / c2) + EPS)
        return loss
    return run


def make_jax(widths, batch) -> Callable[[], object]:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise Unavailable("jax not installed (pip install jax)") from None
    params0, x, y = make_data(widths, batch)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params0]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss_fn(p):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    try:
        import optax
        opt = optax.adam(LR, B1, B2, EPS)
        state = opt.init(params)

        @jax.jit
        def step(p, s):
            loss, g = jax.value_and_grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s, loss
    except ImportError:
        state = (0, jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))

        @jax.jit
        def step(p, s):
            loss, g = jax.value_and_grad(loss_fn)(p)
            t, m, v = s
            t = t + 1
            m = jax.tree.map(lambda a, b: B1 * a + (1 - B1) * b, m, g)
            v = jax.tree.map(lambda a, b: B2 * a + (1 - B2) * b * b, v, g)
            p = jax.tree.map(lambda q, a, b: q - LR * (a / (1 - B1 ** t)) / (jnp.sqrt(b / (1 - B2 ** t)) + EPS),
                             p, m, v)
            return p, (t, m, v), loss
    box = [params, state]

    def run():
        box[0], box[1], loss = step(box[0], box[1])
        # XLA dispatches asynchronously: wait for the whole step (new parameters and
        # optimizer state, not just the loss) inside the timed call.
        jax.block_until_ready((box[0], box[1], loss))
        return loss
    return run


def make_torch(widths, batch) -> Callable[[], object]:
    try:
        import torch
    except ImportError:
        raise Unavailable("torch not installed (pip install torch)") from None
    params0, x, y = make_data(widths, batch)
    layers = []
    for i, (w, b) in enumerate(params0):
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params0) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(B1, B2), eps=EPS)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def run():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()
    return run


# ----------------------------------------------------------------------------- driver

# Losses of the first CHECK_STEPS steps are compared with numpy's: step 1 checks the forward
# pass and loss, the later ones that the gradients and the Adam update agree too.
CHECK_STEPS = 3
CHECK_RTOL = 2e-3


def _first_losses(run: Callable[[], object]) -> list[float]:
    """Run ``CHECK_STEPS`` steps (this also compiles, outside any timed region)."""
    out = []
    for _ in range(CHECK_STEPS):
        loss = run()
        loss = loss.numpy() if hasattr(loss, "numpy") and not isinstance(loss, np.ndarray) else loss
        out.append(float(np.asarray(loss)))
    return out


def candidates(widths, batch, backends) -> tuple[dict, dict]:
    """Build every candidate and check its first steps' losses against numpy's."""
    found, skipped = {}, {}
    makers = [("numpy", lambda: make_numpy(widths, batch))]
    makers += [(f"jitgrad[{b}]", lambda b=b: make_jitgrad(widths, batch, b)) for b in backends]
    makers += [("jax", lambda: make_jax(widths, batch)), ("torch", lambda: make_torch(widths, batch))]
    reference = None
    for name, make in makers:
        try:
            run = make()
            losses = _first_losses(run)
        except Unavailable as e:
            skipped[name] = str(e)
            continue
        except Exception as e:   # noqa: BLE001 - one broken candidate must not stop the rest
            skipped[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        if reference is None:
            reference = losses
        elif not np.allclose(losses, reference, rtol=CHECK_RTOL):
            skipped[name] = (f"different arithmetic: losses of the first {CHECK_STEPS} steps "
                             f"{['%.6g' % v for v in losses]} vs numpy's "
                             f"{['%.6g' % v for v in reference]}")
            continue
        found[name] = run
    order = [f"jitgrad[{b}]" for b in backends] + ["numpy", "jax", "torch"]
    return {n: found[n] for n in order if n in found}, skipped


def run_size(name: str, repeat: int, warmup: int, gap: float, backends) -> str:
    widths, batch = SIZES[name]
    title = f"MLP {'-'.join(map(str, widths))}, batch {batch}, one Adam step"
    found, skipped = candidates(widths, batch, backends)
    results = time_interleaved(found, repeat=repeat, warmup=warmup, gap_s=gap)
    rows = []
    for cand, r in results.items():
        row = {"candidate": cand, "median": format_time(r.median), "min": format_time(r.min)}
        for ref in ("numpy", "jax", "torch"):
            if ref in results and ref != cand:
                row[f"vs {ref}"] = f"{r.paired_ratio(results[ref]):.2f}x"
        rows.append(row)
    columns = ["candidate", "median", "min"] + [f"vs {r}" for r in ("numpy", "jax", "torch")
                                               if r in results]
    text = f"{title}\n\n{format_table(rows, columns)}\n"
    for cand, why in skipped.items():
        text += f"  skipped {cand}: {why}\n"
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.05, help="sleep before each timed block (s)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--backends", nargs="+", default=["cpu", "reference"],
                        help="jitgrad backends to time (default: cpu reference)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit numpy's BLAS threads (threadpoolctl) and PyTorch's "
                             "intra-op threads; default: leave as is")
    parser.add_argument("--append", metavar="FILE", help="append the tables to FILE as Markdown")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        try:   # PyTorch has its own intra-op pool; give it the same number of threads
            import torch   # imported first so that its BLAS is loaded when limits are set
            torch.set_num_threads(args.blas_threads)
        except ImportError:
            pass
        from jitgrad.training import limit_blas_threads
        if not limit_blas_threads(args.blas_threads):
            print("note: threadpoolctl is not installed; --blas-threads ignored for numpy")
    sections = [run_size(s, args.repeat, args.warmup, args.gap, args.backends) for s in args.sizes]
    for s in sections:
        print(s)
    if args.append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        body = "\n".join(f"```\n{s.rstrip()}\n```\n" for s in sections)
        header = (f"\n## Training step (bench/bench_training.py, {stamp})\n\n"
                  f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
                  f"{platform.python_version()}, numpy {np.__version__}, BLAS threads: "
                  f"{args.blas_threads or 'default'}, load average at the end: "
                  f"{os.getloadavg()[0]:.1f}. Median/min per step over {args.repeat} "
                  f"interleaved rounds; ratios are paired per round (> 1 = slower).\n\n")
        with open(args.append, "a") as f:
            f.write(header + body)


if __name__ == "__main__":
    main()
