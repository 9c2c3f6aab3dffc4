"""The built-in kernels of ``jitgrad bench``: what each computes, its sizes, bytes and flops.

Each :class:`Kernel` names a workload, the size strings it understands, and how to build
a :class:`Case` at one size: random float32 inputs, the function jitgrad compiles, a numpy
reference (which is also the "numpy" comparison), the compulsory memory traffic and the
flops, and factories for the other comparisons (numexpr, jax, torch) where they make sense.

Bytes are the compulsory traffic: every input read once and every output written once
(intermediates of a well-fused program stay in registers or cache). Flops count one per
add/mul/compare/max and one per transcendental call (exp, tanh, log, rsqrt), so GFLOP/s
of elementwise kernels are indicative only; matmuls and convolutions count 2*M*N*K.

A kernel whose jitgrad dependencies are missing (``jitgrad.grad`` before autodiff lands)
raises :class:`Unavailable` from ``build`` and is reported as unavailable, not as a failure.
This module imports jitgrad; the rest of ``jitgrad.benchmarking`` does not.
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
LN_EPS = 1e-5
LR = 0.1


class Unavailable(Exception):
    """A kernel or a comparison cannot run here; the message says why (reported, not fatal)."""


class BadSize(ValueError):
    """A size string that the kernel does not understand (a usage error: exit status 2)."""


# Comparison factory: inputs -> zero-argument callable returning the result.
Factory = Callable[[Sequence[np.ndarray]], Callable[[], Any]]


@dataclass
class Case:
    """One kernel at one size, ready to time."""

    kernel: str
    size: str
    description: str
    inputs: list[np.ndarray]
    fn: Callable[..., Any]                 # the function jitgrad jits, called as fn(*inputs)
    reference: Callable[..., Any]          # numpy, same signature and outputs
    bytes: int
    flops: int
    dtype: str = "float32"
    comparisons: dict[str, Factory] = field(default_factory=dict)
    rtol: float = 2e-3
    atol: float = 2e-4


@dataclass
class Kernel:
    """A named workload of the suite."""

    name: str
    description: str
    size_help: str
    default_sizes: tuple[str, ...]
    tiny_size: str
    parse: Callable[[str], tuple]
    build: Callable[[tuple, str], Case]
    needs: tuple[str, ...] = ()            # jitgrad features it needs: "grad"


# ----------------------------------------------------------------------------- size strings

def parse_count(text: str) -> int:
    """An element count: ``4096``, ``2^12``, ``2**12``, ``64k``, ``16M``."""
    t = text.strip().lower()
    try:
        for sep in ("**", "^"):
            if sep in t:
                base, exp = t.split(sep, 1)
                n = int(base) ** int(exp)
                break
        else:
            scale = {"k": 1 << 10, "m": 1 << 20}.get(t[-1:], 1)
            n = int(t[:-1] if scale != 1 else t) * scale
    except ValueError:
        raise BadSize(f"bad element count {text!r} (use e.g. 4096, 2^20 or 16M)") from None
    if n < 1:
        raise BadSize(f"element count must be positive, got {text!r}")
    return n


def parse_dims(text: str, n: int, what: str) -> tuple[int, ...]:
    """``n`` positive ints written ``AxBxC``."""
    parts = text.strip().lower().split("x")
    if len(parts) != n or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise BadSize(f"bad size {text!r}: expected {what}")
    dims = tuple(int(p) for p in parts)
    if min(dims) < 1:
        raise BadSize(f"bad size {text!r}: dimensions must be positive")
    return dims


def parse_mlp(text: str) -> tuple[int, ...]:
    """``BATCHxD0-D1-...-Dk``: batch size and layer widths, e.g. ``128x64-256-256-10``."""
    m = re.fullmatch(r"(\d+)x(\d+(?:-\d+)+)", text.strip().lower())
    if not m:
        raise BadSize(f"bad size {text!r}: expected BATCHxIN-HIDDEN-...-OUT, e.g. 128x64-256-256-10")
    dims = (int(m.group(1)),) + tuple(int(d) for d in m.group(2).split("-"))
    if min(dims) < 1:
        raise BadSize(f"bad size {text!r}: dimensions must be positive")
    return dims


# ----------------------------------------------------------------------------- helpers

def _rng(size: str) -> np.random.Generator:
    # Deterministic per size (crc32, not hash(): str hashes change between processes).
    return np.random.default_rng(zlib.crc32(size.encode()))


def _normal(rng, *shape, scale=1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _one_hot(rng, batch: int, classes: int) -> np.ndarray:
    y = np.zeros((batch, classes), np.float32)
    y[np.arange(batch), rng.integers(0, classes, batch)] = 1.0
    return y


def _jitgrad_feature(name: str):
    """A jitgrad attribute a kernel needs (``grad``, ``value_and_grad``), or Unavailable."""
    import jitgrad
    fn = getattr(jitgrad, name, None)
    if fn is None:
        raise Unavailable(f"jitgrad.{name} is not available yet")
    return fn


def _numexpr(expr: str, names: Callable[[Sequence[np.ndarray]], dict]) -> Factory:
    def make(inputs):
        try:
            import numexpr as ne
        except ImportError:
            raise Unavailable("numexpr not installed (pip install numexpr)") from None
        local = names(inputs)
        out = np.empty_like(inputs[0])
        return lambda: ne.evaluate(expr, local_dict=local, out=out)
    return make


def _jax(build: Callable[[Any, Any], Callable]) -> Factory:
    """A jax.jit comparison: ``build(jax, jnp)`` returns the function to jit."""
    def make(inputs):
        try:
            import jax
            import jax.numpy as jnp
        except ImportError:
            raise Unavailable("jax not installed (pip install jax)") from None
        f = jax.jit(build(jax, jnp))
        args = [jax.device_put(a) for a in inputs]
        return lambda: f(*args)
    return make


def _torch(build: Callable[[Any], Callable]) -> Factory:
    """A PyTorch eager comparison on tensors sharing numpy's memory."""
    def make(inputs):
        try:
            import torch
        except ImportError:
            raise Unavailable("torch not installed (pip install torch)") from None
        f = build(torch)
        args = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        return lambda: f(*args)
    return make


# ----------------------------------------------------------------------------- elementwise

def _relu_fma_np(x, y, z):
    return np.maximum(x * y + z, np.float32(0))


def _relu_fma(x, y, z):
    import jitgrad.numpy as jnp
    return jnp.maximum(x * y + z, 0.0)


def _build_elementwise(dims, size) -> Case:
    (n,) = dims
    rng = _rng(size)
    inputs = [_normal(rng, n) for _ in range(3)]
    return Case(
        "elementwise", size, "relu(x*y+z), float32 vectors", inputs, _relu_fma, _relu_fma_np,
        bytes=4 * 4 * n, flops=3 * n,
        comparisons={
            "numexpr": _numexpr("where(x*y+z > zero, x*y+z, zero)",
                                lambda a: {"x": a[0], "y": a[1], "z": a[2], "zero": np.float32(0)}),
            "jax": _jax(lambda jax, jnp: lambda x, y, z: jnp.maximum(x * y + z, 0)),
            "torch": _torch(lambda torch: lambda x, y, z: torch.relu(x * y + z)),
        })


def _gelu_np(x):
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _gelu(x):
    import jitgrad.numpy as jnp
    return 0.5 * x * (1.0 + jnp.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _build_gelu(dims, size) -> Case:
    (n,) = dims
    rng = _rng(size)
    return Case(
        "gelu", size, "tanh-approximated GELU, float32 vector", [_normal(rng, n)], _gelu, _gelu_np,
        bytes=2 * 4 * n, flops=9 * n,
        comparisons={
            "numexpr": _numexpr("h*x*(one + tanh(k*(x + c*x*x*x)))",
                                lambda a: {"x": a[0], "h": np.float32(0.5), "one": np.float32(1),
                                           "k": np.float32(SQRT_2_OVER_PI), "c": np.float32(0.044715)}),
            "jax": _jax(lambda jax, jnp: lambda x: 0.5 * x * (1.0 + jnp.tanh(
                SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))),
            "torch": _torch(lambda torch: lambda x: 0.5 * x * (1.0 + torch.tanh(
                SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))),
        })


# ----------------------------------------------------------------------------- matmul

def _dense_relu_np(x, w, b):
    return np.maximum(x @ w + b, np.float32(0))


def _dense_relu(x, w, b):
    import jitgrad.numpy as jnp
    return jnp.maximum(x @ w + b, 0.0)


def _build_matmul(dims, size) -> Case:
    m, k, n = dims
    rng = _rng(size)
    inputs = [_normal(rng, m, k), _normal(rng, k, n, scale=1 / math.sqrt(k)), _normal(rng, n)]
    return Case(
        "matmul_bias_relu", size, f"relu(X @ W + b), X {m}x{k}, W {k}x{n}", inputs, _dense_relu,
        _dense_relu_np, bytes=4 * (m * k + k * n + n + m * n), flops=2 * m * k * n + 2 * m * n,
        comparisons={
            "jax": _jax(lambda jax, jnp: lambda x, w, b: jnp.maximum(x @ w + b, 0)),
            "torch": _torch(lambda torch: lambda x, w, b: torch.relu(torch.addmm(b, x, w))),
        })


# ----------------------------------------------------------------------------- softmax xent

def _log_softmax_np(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _xent_np(logits, y):
    return np.float32(-np.mean(np.sum(y * _log_softmax_np(logits), axis=-1)))


def _xent_grad_np(logits, y):
    s = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = s / s.sum(axis=-1, keepdims=True)
    return _xent_np(logits, y), (p - y) / np.float32(logits.shape[0])


def _log_softmax(z):
    import jitgrad.numpy as jnp
    s = z - jnp.max(z, axis=-1, keepdims=True)
    return s - jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True))


def _xent(logits, y):
    import jitgrad.numpy as jnp
    return -jnp.mean(jnp.sum(y * _log_softmax(logits), axis=-1))


def _xent_jax(jax, jnp):
    return lambda z, y: -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z), axis=-1))


def _xent_torch(torch):
    return lambda z, y: -(y * torch.log_softmax(z, dim=-1)).sum(-1).mean()


def _build_xent(dims, size) -> Case:
    b, c = dims
    rng = _rng(size)
    inputs = [_normal(rng, b, c, scale=3.0), _one_hot(rng, b, c)]
    return Case(
        "softmax_xent", size, f"softmax cross-entropy forward, {b}x{c} logits", inputs, _xent,
        _xent_np, bytes=4 * 2 * b * c, flops=6 * b * c,
        comparisons={"jax": _jax(_xent_jax), "torch": _torch(_xent_torch)})


def _build_xent_grad(dims, size) -> Case:
    value_and_grad = _jitgrad_feature("value_and_grad")
    b, c = dims
    rng = _rng(size)
    inputs = [_normal(rng, b, c, scale=3.0), _one_hot(rng, b, c)]

    def torch_vg(torch):
        f = _xent_torch(torch)

        def run(z, y):
            z = z.detach().requires_grad_(True)
            loss = f(z, y)
            (g,) = torch.autograd.grad(loss, z)
            return loss.detach(), g
        return run

    return Case(
        "softmax_xent_grad", size, f"softmax cross-entropy forward+backward, {b}x{c} logits",
        inputs, lambda z, y: value_and_grad(_xent)(z, y), _xent_grad_np,
        bytes=4 * 3 * b * c, flops=10 * b * c,
        comparisons={"jax": _jax(lambda jax, jnp: jax.value_and_grad(_xent_jax(jax, jnp))),
                     "torch": _torch(torch_vg)})


# ----------------------------------------------------------------------------- layer norm

def _layernorm_np(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(LN_EPS)) * g + b


def _layernorm(x, g, b):
    import jitgrad.numpy as jnp
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + LN_EPS) * g + b


def _build_layernorm(dims, size) -> Case:
    rows, cols = dims
    rng = _rng(size)
    inputs = [_normal(rng, rows, cols), _normal(rng, cols), _normal(rng, cols)]
    return Case(
        "layernorm", size, f"layer norm over the last axis, {rows}x{cols}", inputs, _layernorm,
        _layernorm_np, bytes=4 * (2 * rows * cols + 2 * cols), flops=9 * rows * cols,
        comparisons={
            "jax": _jax(lambda jax, jnp: lambda x, g, b: (x - x.mean(-1, keepdims=True)) / jnp.sqrt(
                x.var(-1, keepdims=True) + LN_EPS) * g + b),
            "torch": _torch(lambda torch: lambda x, g, b: torch.nn.functional.layer_norm(
                x, (x.shape[-1],), g, b, LN_EPS)),
        })


# ----------------------------------------------------------------------------- conv2d

def _im2col_np(x, kh, kw):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    cols = np.stack([xp[:, :, i:i + h, j:j + w] for i in range(kh) for j in range(kw)], axis=2)
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * kh * kw)   # (N*H*W, C*kh*kw)


def _conv_np(x, w):
    n, _, h, wd = x.shape
    o, c, kh, kw = w.shape
    out = _im2col_np(x, kh, kw) @ w.reshape(o, c * kh * kw).T
    return np.ascontiguousarray(out.reshape(n, h, wd, o).transpose(0, 3, 1, 2))


def _conv(x, w):
    """NCHW x OIHW, stride 1, 'SAME': lax.conv_general_dilated when jitgrad has it, else im2col."""
    import jitgrad.lax as lax
    import jitgrad.numpy as jnp
    conv = getattr(lax, "conv_general_dilated", None)
    if conv is not None:
        return conv(x, w, window_strides=(1, 1), padding="SAME",
                    dimension_numbers=("NCHW", "OIHW", "NCHW"))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = jnp.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    cols = jnp.stack([xp[:, :, i:i + h, j:j + wd] for i in range(kh) for j in range(kw)], axis=2)
    cols = jnp.transpose(cols, (0, 3, 4, 1, 2)).reshape(n * h * wd, c * kh * kw)
    out = cols @ w.reshape(o, c * kh * kw).T
    return jnp.transpose(out.reshape(n, h, wd, o), (0, 3, 1, 2))


def _build_conv(dims, size) -> Case:
    n, c, h, w, o = dims
    rng = _rng(size)
    inputs = [_normal(rng, n, c, h, w), _normal(rng, o, c, 3, 3, scale=1 / math.sqrt(9 * c))]
    return Case(
        "conv2d", size, f"3x3 conv, stride 1, SAME, NCHW {n}x{c}x{h}x{w} -> {o} channels",
        inputs, _conv, _conv_np, bytes=4 * (n * c * h * w + o * c * 9 + n * o * h * w),
        flops=2 * n * o * h * w * c * 9,
        comparisons={
            "jax": _jax(lambda jax, jnp: lambda x, w: jax.lax.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))),
            "torch": _torch(lambda torch: lambda x, w: torch.nn.functional.conv2d(x, w, padding=1)),
        })


# ----------------------------------------------------------------------------- MLP step

def _mlp_params(rng, widths):
    params = []
    for a, b in zip(widths[:-1], widths[1:]):
        params += [_normal(rng, a, b, scale=math.sqrt(2.0 / a)), np.zeros(b, np.float32)]
    return params


def _mlp_step_np(*args):
    *params, x, y = args
    ws, bs = params[0::2], params[1::2]
    acts, pre = [x], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = acts[-1] @ w + b
        pre.append(z)
        acts.append(np.maximum(z, np.float32(0)) if i < len(ws) - 1 else z)
    logits = acts[-1]
    s = np.exp(logits - logits.max(-1, keepdims=True))
    p = s / s.sum(-1, keepdims=True)
    delta = (p - y) / np.float32(x.shape[0])
    grads = [None] * len(params)
    for i in reversed(range(len(ws))):
        grads[2 * i] = acts[i].T @ delta
        grads[2 * i + 1] = delta.sum(0)
        if i > 0:
            delta = (delta @ ws[i].T) * (pre[i - 1] > 0)
    return [p_ - np.float32(LR) * g for p_, g in zip(params, grads)]


def _mlp_loss(params, x, y):
    import jitgrad.numpy as jnp
    ws, bs = params[0::2], params[1::2]
    h = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = h @ w + b
        if i < len(ws) - 1:
            h = jnp.maximum(h, 0.0)
    return _xent(h, y)


def _build_mlp(dims, size) -> Case:
    grad = _jitgrad_feature("grad")
    batch, widths = dims[0], dims[1:]
    rng = _rng(size)
    params = _mlp_params(rng, widths)
    inputs = params + [_normal(rng, batch, widths[0]), _one_hot(rng, batch, widths[-1])]
    n_params = len(params)

    def step(*args):
        ps, x, y = list(args[:n_params]), args[n_params], args[n_params + 1]
        g = grad(_mlp_loss)(ps, x, y)
        return [p - LR * gp for p, gp in zip(ps, g)]

    def jax_build(jax, jnp):
        def loss(ps, x, y):
            h = x
            for i in range(0, len(ps), 2):
                h = h @ ps[i] + ps[i + 1]
                if i < len(ps) - 2:
                    h = jnp.maximum(h, 0)
            return _xent_jax(jax, jnp)(h, y)

        def run(*args):
            ps, x, y = list(args[:n_params]), args[n_params], args[n_params + 1]
            g = jax.grad(loss)(ps, x, y)
            return [p - LR * gp for p, gp in zip(ps, g)]
        return run

    def torch_build(torch):
        xent = _xent_torch(torch)

        def run(*args):
            ps = [a.detach().requires_grad_(True) for a in args[:n_params]]
            x, y = args[n_params], args[n_params + 1]
            h = x
            for i in range(0, n_params, 2):
                h = torch.addmm(ps[i + 1], h, ps[i])
                if i < n_params - 2:
                    h = torch.relu(h)
            g = torch.autograd.grad(xent(h, y), ps)
            with torch.no_grad():
                return [p - LR * gp for p, gp in zip(ps, g)]
        return run

    mkn = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    n_param_elems = sum(p.size for p in params)
    return Case(
        "mlp_step", size, f"MLP {'-'.join(map(str, widths))} SGD training step, batch {batch}",
        inputs, step, _mlp_step_np,
        # params read and written, x and y read once
        bytes=4 * (2 * n_param_elems + batch * (widths[0] + widths[-1])),
        # forward 2*B*mkn, backward 4*B*mkn (grads of weights and of activations)
        flops=6 * batch * mkn,
        comparisons={"jax": _jax(jax_build), "torch": _torch(torch_build)})


# ----------------------------------------------------------------------------- registry

def _count(text: str) -> tuple:
    return (parse_count(text),)


KERNELS: dict[str, Kernel] = {k.name: k for k in [
    Kernel("elementwise", "relu(x*y+z): a fused 3-input elementwise chain", "N (elements)",
           ("2^12", "2^24"), "1000", _count, _build_elementwise),
    Kernel("gelu", "tanh-approximated GELU", "N (elements)", ("2^12", "2^24"), "1000", _count,
           _build_gelu),
    Kernel("matmul_bias_relu", "relu(X @ W + b): matmul with a fused epilogue", "MxKxN",
           ("64x256x256", "512x1024x1024", "1024x1024x1024"), "8x16x4",
           lambda s: parse_dims(s, 3, "MxKxN, e.g. 512x1024x1024"), _build_matmul),
    Kernel("softmax_xent", "softmax cross-entropy, forward", "BATCHxCLASSES",
           ("128x10", "4096x1000"), "4x10", lambda s: parse_dims(s, 2, "BATCHxCLASSES, e.g. 4096x1000"),
           _build_xent),
    Kernel("softmax_xent_grad", "softmax cross-entropy, forward and backward (value_and_grad)",
           "BATCHxCLASSES", ("128x10", "4096x1000"), "4x10",
           lambda s: parse_dims(s, 2, "BATCHxCLASSES, e.g. 4096x1000"), _build_xent_grad,
           needs=("value_and_grad",)),
    Kernel("layernorm", "layer norm over the last axis, with scale and bias", "ROWSxCOLS",
           ("256x768", "4096x1024"), "4x8", lambda s: parse_dims(s, 2, "ROWSxCOLS, e.g. 4096x1024"),
           _build_layernorm),
    Kernel("conv2d", "3x3 convolution, stride 1, SAME padding, NCHW", "NxCxHxWxCOUT",
           ("32x8x28x28x16", "64x32x32x32x64"), "2x2x5x5x3",
           lambda s: parse_dims(s, 5, "NxCxHxWxCOUT, e.g. 32x8x28x28x16"), _build_conv),
    Kernel("mlp_step", "MLP training step: forward, backward and SGD update", "BATCHxIN-...-OUT",
           ("128x64-256-256-10", "1024x1024-1024-1024-10"), "4x8-16-3", parse_mlp, _build_mlp,
           needs=("grad",)),
]}


def build_case(kernel: Kernel, size: str) -> Case:
    """``kernel`` at ``size`` (raises BadSize for a size it does not understand, Unavailable
    when jitgrad lacks what it needs)."""
    return kernel.build(kernel.parse(size), size)


def parse_sizes(kernel: Kernel, sizes: Sequence[str]) -> None:
    """Check every size string against ``kernel`` (BadSize names the first bad one)."""
    for s in sizes:
        try:
            kernel.parse(s)
        except BadSize as e:
            raise BadSize(f"kernel {kernel.name!r}: {e} ({kernel.size_help})") from None
