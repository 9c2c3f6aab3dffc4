"""``jitgrad.random``: JAX's counter-based PRNG, with ``jax.random``'s names and bits.

Randomness is explicit, as in JAX: a *key* is a value (a ``uint32[2]`` array), every
sampler takes one, and the same key always gives the same numbers. To draw several
independent streams, ``split`` the key (or ``fold_in`` a counter) and never reuse one::

    key = random.key(0)
    key, sub = random.split(key)
    w = random.normal(sub, (64, 10))

The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers:
as easy as 1, 2, 3", SC 2011), written with ``jitgrad.lax`` uint32 operations only (add,
xor, shifts, or, iota, reshape, concatenate, convert/bitcast). It therefore needs no
primitive of its own: under ``jit`` it fuses into the compiled kernels like any other
arithmetic, and it gives the same bits eagerly, under ``jit``, under ``vmap`` and on
every backend.

Compatibility with JAX
----------------------
* The hash is bit-identical to JAX's ``threefry2x32`` (tested on the Random123 known-answer
  vectors), and ``key``/``PRNGKey``/``fold_in``/``split``/``bits``/``uniform``/``randint``
  compute what JAX computes, operation for operation.
* How ``split`` and ``bits`` lay out their counters is chosen by the config flag
  ``jax_threefry_partitionable``. JAX made ``True`` the default in jax 0.5.0 (January
  2025), and so does jitgrad: then ``split(key, n)[i] == fold_in(key, i)`` and element
  ``i`` of ``bits(key, shape)`` is ``y0 ^ y1`` of the hash of the counter pair
  ``(hi(i), lo(i))`` of its row-major index. ``config.update("jax_threefry_partitionable",
  False)`` selects the scheme of older JAX releases (one iota of counters hashed in two
  halves), which is also implemented.
* Keys are JAX's *legacy raw keys*: ``key(seed)`` and ``PRNGKey(seed)`` both return a
  ``uint32[2]`` array (JAX's ``key`` returns a typed key array; jitgrad has no key dtype).
  ``key_data``/``wrap_key_data`` convert between the two views as in JAX (both are the
  identity here). A batch of keys is a ``uint32[..., 2]`` array: map over it with ``vmap``.
* ``normal``/``truncated_normal`` use the platform's ``erf_inv``; numpy's and XLA's
  float32 ``erf_inv`` may differ in the last bit, so those samples match JAX to within
  an ulp or two rather than bit for bit.
* ``uniform`` with a range other than [0, 1) scales as ``u * (maxval - minval) + minval``,
  as JAX does, but XLA contracts that into one fused multiply-add (seen with jax 0.10.2
  on CPU) while jitgrad rounds the product first: such samples (and ``truncated_normal``, which
  is built on them) can differ from JAX's by about an ulp of the product. The default
  range, ``normal`` and the samplers built on [0, 1) are exact (the product is exact).
* Checked against jax 0.10.2 (``tests/test_random.py`` holds its values): keys, ``split``,
  ``fold_in``, ``bits``, ``uniform``, ``randint`` (8/16-bit dtypes are drawn in 32 bits
  and converted, as current JAX does), ``bernoulli`` (``mode="low"``/``"high"``),
  ``gumbel``/``categorical`` (``mode="low"``/``"high"``; JAX's float32-only ``"highest"``
  needs a count-leading-zeros primitive jitgrad lacks), ``categorical(replace=False)``,
  ``choice``, ``permutation`` are bit-identical. Two deliberate leniencies: ``fold_in``
  wraps a negative Python int to uint32 (JAX raises ``OverflowError``) and ``bernoulli``
  accepts an integer ``p`` (JAX raises ``TypeError``).
* ``permutation``/``choice(replace=False)`` sort random keys, as JAX does. jitgrad has no
  sort primitive yet: eagerly the sort runs in numpy; inside a trace it is expressed by
  pairwise comparisons (O(n^2) work and memory, fine for the few thousand elements of a
  data set's index).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

from . import lax
from . import numpy as jnp
from .core import dtypes, trace_state
from .core.array import Array, ArrayImpl
from .core.config import config
from .core.errors import DTypeError, ShapeError
from .core.trace import get_aval

__all__ = [
    "PRNGKey", "key", "key_data", "wrap_key_data", "clone", "split", "fold_in", "bits",
    "uniform", "normal", "truncated_normal", "bernoulli", "randint", "categorical", "choice",
    "permutation", "gumbel", "exponential", "threefry_2x32",
]

KeyArray = Array   # a uint32[2] array
Shape = Sequence[int]

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = 0x1BD11BDA   # Threefry's key-schedule constant (Skein's C240)


# ================================================================== the Threefry hash

def _u32(x: Any) -> np.ndarray:
    return np.asarray(x, np.uint32)


def _rotate_left(x, d: int):
    return lax.bitwise_or(lax.shift_left(x, _u32(d)), lax.shift_right_logical(x, _u32(32 - d)))


def threefry2x32(k0, k1, x0, x1) -> tuple[Any, Any]:
    """Threefry-2x32, 20 rounds: hash the counter pairs ``(x0, x1)`` under key ``(k0, k1)``.

    All operands are uint32; ``k0``/``k1`` are scalars, ``x0``/``x1`` arrays of one shape
    (or scalars). Returns the two output words, each of the counters' shape.
    """
    ks = (k0, k1, lax.bitwise_xor(lax.bitwise_xor(k0, k1), _u32(_KEY_PARITY)))
    x0, x1 = lax.add(x0, ks[0]), lax.add(x1, ks[1])
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_xor(x0, _rotate_left(x1, r))
        # Key injection after every 4 rounds: rotate the schedule, add the block counter.
        x0 = lax.add(x0, ks[(block + 1) % 3])
        x1 = lax.add(x1, lax.add(ks[(block + 2) % 3], _u32(block + 1)))
    return x0, x1


def threefry_2x32(keypair, count):
    """JAX's ``threefry_2x32(keypair, count)``: hash a uint32 array of counts.

    The flattened counts (padded with one zero if odd) are split into halves that form
    the counter pairs; the two output halves are concatenated back into ``count``'s
    shape. ``keypair`` is a uint32[2] key (or a pair of uint32 scalars).
    """
    k0, k1 = _key_halves(keypair) if not isinstance(keypair, tuple) else keypair
    aval = get_aval(count)
    if aval.dtype != np.uint32:
        raise DTypeError(f"threefry_2x32: count must be uint32, got {aval.str_short()}")
    n = aval.size
    flat = lax.reshape(count, (n,))
    odd = n % 2
    if odd:
        flat = lax.concatenate([flat, lax.full((1,), 0, np.uint32)], 0)
    half = (n + odd) // 2
    x0 = lax.slice(flat, (0,), (half,))
    x1 = lax.slice(flat, (half,), (2 * half,))
    y0, y1 = threefry2x32(k0, k1, x0, x1)
    out = lax.concatenate([y0, y1], 0)
    if odd:
        out = lax.slice(out, (0,), (n,))
    return lax.reshape(out, aval.shape)


# ================================================================== keys

def _check_key(name: str, key) -> None:
    """Raise a clear error unless ``key`` is one uint32[2] key."""
    try:
        aval = get_aval(key)
    except TypeError:
        aval = None
    if aval is None or aval.dtype != np.uint32 or aval.shape != (2,):
        got = aval.str_short() if aval is not None else type(key).__name__
        hint = ("Create keys with jitgrad.random.key(seed) (or PRNGKey) and derive new ones "
                "with random.split / random.fold_in.")
        if aval is not None and aval.dtype == np.uint32 and aval.shape[-1:] == (2,):
            hint = ("This is a batch of keys; map over it with jitgrad.vmap, e.g. "
                    f"vmap(lambda k: random.{name}(k, ...))(keys).")
        raise ShapeError(f"random.{name}: expected a single PRNG key, a u32[2] array, "
                         f"but got {got}", hint=hint)


def _key_halves(key) -> tuple[Any, Any]:
    return (lax.index_in_dim(key, 0, keepdims=False), lax.index_in_dim(key, 1, keepdims=False))


def _seed_to_key(seed):
    """JAX's ``threefry_seed``: the high and low 32-bit words of an integer seed."""
    k_hi = lax.convert_element_type(lax.shift_right_logical(seed, 32), np.uint32)
    k_lo = lax.convert_element_type(seed, np.uint32)   # keeps the low 32 bits
    return lax.concatenate([lax.reshape(k_hi, (1,)), lax.reshape(k_lo, (1,))], 0)


def key(seed: int | Any, *, impl: str | None = None) -> KeyArray:
    """A PRNG key from an integer seed: ``uint32[2]`` = (high word, low word) of the seed.

    As in JAX, a Python int is read as int64 and then canonicalised: with x64 disabled it
    keeps its low 32 bits (``key(0)`` is ``[0, 0]``, ``key(42)`` is ``[0, 42]``,
    ``key(-1)`` is ``[0, 4294967295]``); with x64 enabled the high word is kept too.
    The seed may be a traced integer scalar. Unlike JAX's ``key``, the result is a raw
    uint32 array (JAX's legacy ``PRNGKey`` representation), not a typed key array.
    """
    if impl not in (None, "threefry2x32"):
        raise ValueError(f"random.key: only impl='threefry2x32' is available, got {impl!r}")
    if isinstance(seed, bool) or (isinstance(seed, float)):
        raise TypeError(f"random.key: the seed must be an integer, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        seed = np.asarray(np.int64(seed)).astype(dtypes.canonicalize_dtype(np.int64))
    aval = get_aval(seed)
    if aval.shape != () or not dtypes.is_int(aval.dtype):
        raise TypeError(f"random.key: the seed must be an integer scalar, got {aval.str_short()}")
    return _seed_to_key(seed)


def PRNGKey(seed: int | Any) -> KeyArray:
    """A raw ``uint32[2]`` PRNG key from an integer seed (JAX's legacy name; see ``key``)."""
    return key(seed)


def key_data(keys: KeyArray) -> KeyArray:
    """The raw uint32 data of a key (the key itself: jitgrad keys are raw arrays)."""
    return keys


def wrap_key_data(key_bits_array, *, impl: str | None = None) -> KeyArray:
    """A key from its raw uint32 data (checked to be ``uint32[..., 2]``)."""
    aval = get_aval(key_bits_array)
    if aval.dtype != np.uint32 or aval.shape[-1:] != (2,):
        raise ShapeError(f"random.wrap_key_data: key data must be u32[..., 2], got {aval.str_short()}")
    return jnp.asarray(key_bits_array)


def clone(key: KeyArray) -> KeyArray:
    """The same key (keys are immutable values; as JAX's ``clone``)."""
    return key


def _partitionable() -> bool:
    return bool(config.jax_threefry_partitionable)


def _canonical_shape(name: str, shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"random.{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"random.{name}: shape {shape} has a negative dimension")
    return shape


def _iota_2x32(shape: tuple[int, ...]):
    """Counter pairs (hi, lo) = the 64-bit row-major index of each element of ``shape``."""
    size = math.prod(shape)
    if size > 2 ** 32:
        raise NotImplementedError(f"random: arrays of more than 2**32 elements ({shape})")
    lo = lax.reshape(lax.iota(np.uint32, size), shape)
    return _u32(0), lo      # hi is 0 for fewer than 2**32 elements; a scalar broadcasts


def split(key: KeyArray, num: int | Shape = 2) -> KeyArray:
    """``num`` new keys from ``key`` (``num`` may be a shape): a ``uint32[*num, 2]`` array.

    Partitionable scheme (the default): key ``i`` is the hash of the counter pair
    ``(0, i)``, so ``split(key, n)[i]`` equals ``fold_in(key, i)``.
    """
    _check_key("split", key)
    shape = _canonical_shape("split", num)
    k0, k1 = _key_halves(key)
    if _partitionable():
        hi, lo = _iota_2x32(shape)
        y0, y1 = threefry2x32(k0, k1, hi, lo)
        y0 = lax.broadcast_in_dim(y0, shape, tuple(range(len(shape)))) if get_aval(y0).shape != shape else y0
        return lax.concatenate([lax.reshape(y0, shape + (1,)), lax.reshape(y1, shape + (1,))],
                               len(shape))
    n = math.prod(shape)
    counts = lax.iota(np.uint32, 2 * n)
    return lax.reshape(threefry_2x32((k0, k1), counts), shape + (2,))


def fold_in(key: KeyArray, data: int | Any) -> KeyArray:
    """A new key from ``key`` and an integer (a step number, a layer index, ...).

    ``data`` is converted to uint32 and used as the counter pair ``(0, data)``, as in JAX.
    """
    _check_key("fold_in", key)
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        data = np.asarray(np.int64(data)).astype(np.uint32)
    aval = get_aval(data)
    if aval.shape != ():
        raise ShapeError(f"random.fold_in: data must be a scalar, got {aval.str_short()}")
    data = lax.convert_element_type(data, np.uint32)
    k0, k1 = _key_halves(key)
    y0, y1 = threefry2x32(k0, k1, _u32(0), data)
    return lax.concatenate([lax.reshape(y0, (1,)), lax.reshape(y1, (1,))], 0)


def _random_bits(key: KeyArray, bit_width: int, shape: tuple[int, ...]):
    """Unsigned integers of ``bit_width`` bits, uniformly distributed, of ``shape``."""
    if bit_width not in _UINT:
        raise TypeError(f"random.bits: bit width must be 8, 16, 32 or 64, got {bit_width}")
    dtype = np.dtype(_UINT[bit_width])
    if dtypes.canonicalize_dtype(dtype) != dtype:
        raise DTypeError(f"random.bits: {dtype.name} needs jax_enable_x64",
                         hint='Call jitgrad.config.update("jax_enable_x64", True) first.')
    k0, k1 = _key_halves(key)
    if _partitionable():
        hi, lo = _iota_2x32(shape)
        y0, y1 = threefry2x32(k0, k1, hi, lo)
        if bit_width == 64:
            y0 = lax.convert_element_type(y0, dtype)
            y1 = lax.convert_element_type(y1, dtype)
            return lax.bitwise_or(lax.shift_left(y0, np.asarray(32, dtype)), y1)
        out = lax.bitwise_xor(y0, y1)
        return out if bit_width == 32 else lax.convert_element_type(out, dtype)
    return _random_bits_original(k0, k1, bit_width, dtype, shape)


def _random_bits_original(k0, k1, bit_width: int, dtype: np.dtype, shape: tuple[int, ...]):
    """The pre-0.5 JAX scheme: hash one iota of ``ceil(bits / 32)`` counters."""
    size = math.prod(shape)
    n_words = -(-bit_width * size // 32)
    if n_words >= 2 ** 32 - 1:
        raise NotImplementedError(f"random: arrays of more than 2**32 words ({shape})")
    words = threefry_2x32((k0, k1), lax.iota(np.uint32, n_words))
    if bit_width == 64:
        hi = lax.convert_element_type(lax.slice(words, (0,), (size,)), dtype)
        lo = lax.convert_element_type(lax.slice(words, (size,), (2 * size,)), dtype)
        out = lax.bitwise_or(lax.shift_left(hi, np.asarray(32, dtype)), lo)
    elif bit_width == 32:
        out = words
    else:
        # Little-endian reinterpretation of each word as 32 // bit_width narrower integers.
        per = 32 // bit_width
        shifts = lax.mul(lax.broadcasted_iota(np.uint32, (n_words, per), 1), _u32(bit_width))
        wide = lax.broadcast_in_dim(words, (n_words, per), (0,))
        parts = lax.convert_element_type(lax.shift_right_logical(wide, shifts), dtype)
        out = lax.slice(lax.reshape(parts, (n_words * per,)), (0,), (size,))
    return lax.reshape(out, shape)


def bits(key: KeyArray, shape: Shape = (), dtype=None) -> Array:
    """Uniformly distributed unsigned integers (``uint32`` by default) of ``shape``."""
    _check_key("bits", key)
    dtype = np.dtype(np.uint32 if dtype is None else dtype)
    if dtype.kind != "u":
        raise DTypeError(f"random.bits: dtype must be unsigned, got {dtype.name}")
    return _random_bits(key, dtype.itemsize * 8, _canonical_shape("bits", shape))


# ================================================================== continuous samplers

def _float_dtype(name: str, dtype) -> np.dtype:
    dt = dtypes.default_float_dtype() if dtype is None or dtype is float else \
        dtypes.canonicalize_dtype(dtype)
    if not dtypes.is_float(dt):
        raise DTypeError(f"random.{name}: dtype must be a floating-point type, got {dt.name}")
    return dt


def _broadcast_param(name: str, value, shape: tuple[int, ...], dtype):
    """``value`` converted to ``dtype`` and broadcast to ``shape`` (numpy rules)."""
    value = lax.convert_element_type(jnp.asarray(value), dtype)
    vshape = get_aval(value).shape
    try:
        out = np.broadcast_shapes(vshape, shape)
    except ValueError:
        out = None
    if out != shape:
        raise ShapeError(f"random.{name}: a parameter of shape {vshape} does not broadcast to "
                         f"the requested shape {shape}")
    return jnp.broadcast_to(value, shape)


def uniform(key: KeyArray, shape: Shape = (), dtype=None, minval=0.0, maxval=1.0) -> Array:
    """Uniform samples in ``[minval, maxval)``.

    As in JAX: random mantissa bits under the exponent of 1.0 give a float in [1, 2);
    subtracting 1 and scaling gives the range.
    """
    _check_key("uniform", key)
    dtype = _float_dtype("uniform", dtype)
    shape = _canonical_shape("uniform", shape)
    minval = _broadcast_param("uniform", minval, shape, dtype)
    maxval = _broadcast_param("uniform", maxval, shape, dtype)
    finfo = np.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    uint = np.dtype(_UINT[nbits])
    raw = _random_bits(key, nbits, shape)
    one_bits = np.asarray(np.array(1.0, dtype).view(uint))
    mantissa = lax.shift_right_logical(raw, np.asarray(nbits - nmant, uint))
    floats = lax.sub(lax.bitcast_convert_type(lax.bitwise_or(mantissa, one_bits), dtype),
                     np.asarray(1.0, dtype))
    return lax.max(minval, lax.add(lax.mul(floats, lax.sub(maxval, minval)), minval))


def normal(key: KeyArray, shape: Shape = (), dtype=None) -> Array:
    """Standard normal samples: ``sqrt(2) * erf_inv(u)`` for ``u`` uniform in (-1, 1)."""
    _check_key("normal", key)
    dtype = _float_dtype("normal", dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = uniform(key, shape, dtype, lo, 1.0)
    return lax.mul(np.asarray(np.sqrt(2), dtype), lax.erf_inv(u))


def truncated_normal(key: KeyArray, lower, upper, shape: Shape | None = None, dtype=None) -> Array:
    """Normal samples conditioned on ``lower < x < upper`` (inverse-CDF method, as JAX)."""
    _check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    if shape is None:
        shape = np.broadcast_shapes(np.shape(lower), np.shape(upper))
    shape = _canonical_shape("truncated_normal", shape)
    sqrt2 = np.asarray(np.sqrt(2), dtype)
    lower = lax.convert_element_type(jnp.asarray(lower), dtype)
    upper = lax.convert_element_type(jnp.asarray(upper), dtype)
    a = lax.erf(jnp.divide(lower, sqrt2))
    b = lax.erf(jnp.divide(upper, sqrt2))
    u = uniform(key, shape, dtype, minval=a, maxval=b)
    out = lax.mul(sqrt2, lax.erf_inv(u))
    # Keep the result inside the open interval despite rounding (u may equal a).
    lo = lax.nextafter(lax.stop_gradient(lower), np.asarray(np.inf, dtype))
    hi = lax.nextafter(lax.stop_gradient(upper), np.asarray(-np.inf, dtype))
    return jnp.clip(out, lo, hi)


def _check_gumbel_mode(name: str, mode: str | None) -> str:
    if mode is None:
        return "low"   # JAX's default (its use_high_dynamic_range_gumbel flag is off)
    if mode == "highest":
        raise NotImplementedError(
            f"random.{name}: mode='highest' is not implemented (it needs a count-leading-zeros "
            "primitive); use mode='high', which resolves probabilities down to ~1e-14.")
    if mode not in ("low", "high"):
        raise ValueError(f"random.{name}: mode must be 'low' or 'high', got {mode!r}")
    return mode


def gumbel(key: KeyArray, shape: Shape = (), dtype=None, mode: str | None = None) -> Array:
    """Standard Gumbel samples.

    ``mode="low"`` (default): ``-log(-log(u))`` for ``u`` uniform in [tiny, 1), so the
    largest float32 sample is ~16. ``mode="high"`` builds ``u`` from two uniforms (the
    second as the next 23 bits) and returns ``-log(-log1p(-u))``: samples up to ~32, at
    twice the cost. Both as in JAX.
    """
    _check_key("gumbel", key)
    dtype = _float_dtype("gumbel", dtype)
    mode = _check_gumbel_mode("gumbel", mode)
    shape = _canonical_shape("gumbel", shape)
    finfo = np.finfo(dtype)
    if mode == "high":
        u = uniform(key, (2,) + shape, dtype)
        high = lax.index_in_dim(u, 0, keepdims=False)
        low = lax.index_in_dim(u, 1, keepdims=False)
        # Below 0.5 the low word adds resolution; at or above it, adding could round up to 1.
        fine = lax.add(lax.add(high, lax.mul(np.asarray(2.0 ** -finfo.nmant, dtype), low)),
                       np.asarray(finfo.tiny, dtype))
        x = lax.select(lax.ge(high, np.asarray(0.5, dtype)), high, fine)
        return lax.neg(lax.log(lax.neg(lax.log1p(lax.neg(x)))))
    u = uniform(key, shape, dtype, minval=finfo.tiny, maxval=1.0)
    return lax.neg(lax.log(lax.neg(lax.log(u))))


def exponential(key: KeyArray, shape: Shape = (), dtype=None) -> Array:
    """Standard exponential samples: ``-log1p(-u)``."""
    _check_key("exponential", key)
    dtype = _float_dtype("exponential", dtype)
    u = uniform(key, shape, dtype)
    return lax.neg(lax.log1p(lax.neg(u)))


# ================================================================== discrete samplers

def bernoulli(key: KeyArray, p=0.5, shape: Shape | None = None, mode: str = "low") -> Array:
    """Booleans that are True with probability ``p``.

    ``mode="low"`` (the default): ``uniform < p``, which cannot resolve ``p`` below the
    float's resolution (~6e-8 in float32). ``mode="high"`` draws a second uniform as the
    next bits of the first (``u2 * 2**-nmant < p - u1``): twice the work, correct down to
    ~1e-14. Both as in JAX, bit for bit.
    """
    _check_key("bernoulli", key)
    if mode not in ("low", "high"):
        raise ValueError(f"random.bernoulli: mode must be 'low' or 'high', got {mode!r}")
    p_aval = get_aval(p)
    dtype = p_aval.dtype if dtypes.is_float(p_aval.dtype) else dtypes.default_float_dtype()
    if shape is None:
        shape = p_aval.shape
    shape = _canonical_shape("bernoulli", shape)
    p = _broadcast_param("bernoulli", p, shape, dtype)
    if mode == "high":
        u = uniform(key, (2,) + shape, dtype)
        u1, u2 = lax.index_in_dim(u, 0, keepdims=False), lax.index_in_dim(u, 1, keepdims=False)
        u2 = lax.mul(u2, np.asarray(2.0 ** -np.finfo(dtype).nmant, dtype))
        return lax.lt(u2, lax.sub(p, u1))
    return lax.lt(uniform(key, shape, dtype), p)


def _clip_to_dtype(value, dtype: np.dtype):
    """An integer array clipped into ``dtype``'s range, then converted to ``dtype``."""
    src = get_aval(value).dtype
    info, src_info = np.iinfo(dtype), np.iinfo(src)
    lo, hi = max(info.min, src_info.min), min(info.max, src_info.max)
    if lo > src_info.min or hi < src_info.max:
        value = lax.clamp(np.asarray(lo, src), value, np.asarray(hi, src))
    return lax.convert_element_type(value, dtype)


def randint(key: KeyArray, shape: Shape, minval, maxval, dtype=None) -> Array:
    """Integers uniform in ``[minval, maxval)`` (JAX's algorithm, bit for bit).

    Two words of random bits per sample reduce the modulo bias; ``maxval <= minval``
    gives ``minval``, and a ``maxval`` just past the dtype's range is allowed
    (``randint(k, s, 0, 256, jnp.uint8)``). 8- and 16-bit dtypes are drawn as int32 and
    converted (as jax 0.10 does: the modulo's bias shrinks with the width).
    """
    _check_key("randint", key)
    dtype = dtypes.default_int_dtype() if dtype is None or dtype is int else \
        dtypes.canonicalize_dtype(dtype)
    if not dtypes.is_int(dtype):
        raise DTypeError(f"random.randint: dtype must be an integer type, got {dtype.name}")
    shape = _canonical_shape("randint", shape)
    info = np.iinfo(dtype)
    if info.bits >= 32:
        return _randint(key, shape, minval, maxval, dtype)
    i32 = np.dtype(np.int32)
    lo, hi = np.asarray(info.min, i32), np.asarray(info.max, i32)
    minval = jnp.clip(jnp.asarray(minval).astype(i32), lo, hi)
    maxval = jnp.clip(jnp.asarray(maxval).astype(i32), lo, hi + 1)
    return lax.convert_element_type(_randint(key, shape, minval, maxval, i32), dtype)


def _randint(key: KeyArray, shape: tuple[int, ...], minval, maxval, dtype: np.dtype) -> Array:
    """``randint`` drawn directly in ``dtype`` (JAX's ``_randint``)."""
    minval, maxval = jnp.asarray(minval), jnp.asarray(maxval)
    if not dtypes.is_int(minval.dtype):
        minval = minval.astype(dtypes.default_int_dtype())
    if not dtypes.is_int(maxval.dtype):
        maxval = maxval.astype(dtypes.default_int_dtype())
    info = np.iinfo(dtype)
    max_as_src = np.asarray(min(info.max, np.iinfo(maxval.dtype).max), maxval.dtype)
    maxval_out_of_range = lax.gt(maxval, max_as_src)
    minval = _broadcast_param("randint", _clip_to_dtype(minval, dtype), shape, dtype)
    maxval = _broadcast_param("randint", _clip_to_dtype(maxval, dtype), shape, dtype)
    maxval_out_of_range = jnp.broadcast_to(maxval_out_of_range, shape)
    nbits = info.bits
    unsigned = np.dtype(_UINT[nbits])

    k1, k2 = _split2(key)
    higher_bits = _random_bits(k1, nbits, shape)
    lower_bits = _random_bits(k2, nbits, shape)

    span = lax.convert_element_type(lax.sub(maxval, minval), unsigned)
    one = jnp.ones(shape, unsigned)
    span = lax.select(lax.le(maxval, minval), one, span)        # empty range -> minval
    span = lax.select(lax.bitwise_and(maxval_out_of_range, lax.gt(maxval, minval)),
                      lax.add(span, one), span)                 # maxval past the range
    # A span that wrapped to 0 means "all 2**nbits values": the low word is the offset
    # (XLA's x % 0 == x gives that in JAX; jitgrad's rem(x, 0) is 0, so select it here).
    full_range = lax.eq(span, lax.full_like(span, 0))
    span = lax.select(full_range, one, span)
    # (hi * 2**nbits + lo) % span without overflow: 2**nbits % span squared in two steps.
    multiplier = lax.rem(lax.full_like(span, 2 ** (nbits // 2)), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher_bits, span), multiplier), lax.rem(lower_bits, span))
    offset = lax.select(full_range, lower_bits, lax.rem(offset, span))
    return lax.add(minval, lax.convert_element_type(offset, dtype))


def _split2(key):
    keys = split(key, 2)
    return lax.index_in_dim(keys, 0, keepdims=False), lax.index_in_dim(keys, 1, keepdims=False)


def categorical(key: KeyArray, logits, axis: int = -1, shape: Shape | None = None,
                replace: bool = True, mode: str | None = None) -> Array:
    """Indices drawn from the categorical distribution ``softmax(logits)`` along ``axis``.

    With replacement (default), the Gumbel-max trick: ``argmax(logits + gumbel)``.
    ``shape`` must broadcast with the batch shape of ``logits`` (its shape without
    ``axis``) in its trailing entries; leading entries draw more samples.
    Without replacement, the Gumbel top-k trick: the ``k = prod(leading entries)``
    largest ``logits + gumbel`` along ``axis``, in decreasing order, so ``k`` distinct
    indices per distribution; then ``shape`` must equal ``leading + batch shape``.
    ``mode`` is passed to ``gumbel``. Same values as JAX.
    """
    _check_key("categorical", key)
    mode = _check_gumbel_mode("categorical", mode)
    logits = jnp.asarray(logits)
    if not dtypes.is_float(logits.dtype):
        logits = logits.astype(dtypes.default_float_dtype())
    ndim = logits.ndim
    if ndim == 0:
        raise ShapeError("random.categorical: logits must have at least one axis")
    if not -ndim <= axis < ndim:
        raise ValueError(f"random.categorical: axis {axis} is out of bounds for logits of "
                         f"rank {ndim}")
    axis = axis % ndim
    batch_shape = tuple(d for i, d in enumerate(logits.shape) if i != axis)
    if shape is None:
        shape = batch_shape
    shape = _canonical_shape("categorical", shape)
    try:
        compatible = np.broadcast_shapes(shape, batch_shape) == shape
    except ValueError:
        compatible = False
    if not compatible:
        raise ShapeError(f"random.categorical: shape {shape} must end with (a shape that "
                         f"broadcasts with) the batch shape {batch_shape} of logits "
                         f"{get_aval(logits).str_short()} (axis {axis})")
    prefix = shape[:len(shape) - len(batch_shape)]
    int_dtype = dtypes.default_int_dtype()
    if not replace:
        if shape != prefix + batch_shape:
            raise ShapeError(f"random.categorical(replace=False): shape {shape} must be "
                             f"(samples...) + the batch shape {batch_shape}")
        k = math.prod(prefix)
        if k > logits.shape[axis]:
            raise ValueError(f"random.categorical: number of samples without replacement "
                             f"({k}) cannot exceed the number of categories "
                             f"({logits.shape[axis]})")
        noisy = jnp.moveaxis(logits + gumbel(key, logits.shape, logits.dtype, mode), axis, -1)
        # top-k: the k largest in decreasing order, ties to the lower index (a stable sort).
        top = lax.slice_in_dim(_argsort_along(lax.neg(noisy), noisy.ndim - 1), 0, k,
                               axis=noisy.ndim - 1)                 # batch_shape + (k,)
        top = jnp.moveaxis(top, -1, 0)                               # (k,) + batch_shape
        return jnp.reshape(top, shape).astype(int_dtype)
    noise_shape = prefix + shape[len(prefix):len(prefix) + axis] + (logits.shape[axis],) + \
        shape[len(prefix) + axis:]
    noise = gumbel(key, noise_shape, logits.dtype, mode)
    expanded = jnp.reshape(logits, (1,) * len(prefix) + logits.shape)
    return jnp.argmax(noise + expanded, axis=len(prefix) + axis).astype(int_dtype)


# ------------------------------------------------------------------ sorting helpers

def _argsort_along(sort_keys, axis: int):
    """Stable ascending argsort of ``sort_keys`` along ``axis`` (int32 indices).

    Eagerly numpy sorts; inside a trace the rank of each element is counted with
    pairwise comparisons (rank_i = #{j: k_j < k_i or (k_j == k_i and j < i)}) and the
    inverse permutation is written with a scatter.
    """
    if trace_state.is_eager():
        order = np.argsort(np.asarray(sort_keys), axis=axis, kind="stable")
        return ArrayImpl(order.astype(dtypes.default_int_dtype()))
    k = jnp.moveaxis(sort_keys, axis, -1)
    n = k.shape[-1]
    idx = jnp.arange(n, dtype=dtypes.default_int_dtype())
    ki, kj = k[..., :, None], k[..., None, :]
    before = (kj < ki) | ((kj == ki) & (idx[None, :] < idx[:, None]))
    rank = jnp.sum(before.astype(dtypes.default_int_dtype()), axis=-1)      # (..., n)
    # order[rank_i] = i
    order = _scatter_last(jnp.zeros(k.shape, dtypes.default_int_dtype()), rank,
                          jnp.broadcast_to(idx, k.shape))
    return jnp.moveaxis(order, -1, axis)


def _scatter_last(target, index, values):
    """``target[..., index[..., i]] = values[..., i]`` for every leading position."""
    flat_t = jnp.reshape(target, (-1, target.shape[-1]))
    flat_i = jnp.reshape(index, (-1, index.shape[-1]))
    flat_v = jnp.reshape(values, (-1, values.shape[-1]))
    rows = jnp.broadcast_to(jnp.arange(flat_t.shape[0])[:, None], flat_i.shape)
    return jnp.reshape(flat_t.at[rows, flat_i].set(flat_v), target.shape)


def _shuffle(key: KeyArray, x, axis: int):
    """Sort ``x`` along ``axis`` by random keys, in as many rounds as JAX uses."""
    n = int(np.prod(x.shape)) if x.ndim else 1
    # Enough rounds that ties between 32-bit sort keys are unlikely to matter (JAX's choice).
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, subkey = _split2(key)
        sort_keys = _random_bits(subkey, 32, tuple(x.shape))
        order = _argsort_along(sort_keys, axis)
        x = jnp.take_along_axis(x, order, axis=axis)
    return x


def permutation(key: KeyArray, x, axis: int = 0, independent: bool = False) -> Array:
    """A random permutation of ``range(x)`` (an int) or of ``x`` along ``axis``.

    With ``independent=True`` each slice along the other axes is shuffled on its own.
    """
    _check_key("permutation", key)
    if isinstance(x, (int, np.integer)) or (hasattr(x, "ndim") and x.ndim == 0):
        n = int(x)
        return _shuffle(key, jnp.arange(n, dtype=dtypes.default_int_dtype()), 0)
    x = jnp.asarray(x)
    axis = axis % x.ndim
    if independent or x.ndim == 1:
        return _shuffle(key, x, axis)
    order = _shuffle(key, jnp.arange(x.shape[axis], dtype=dtypes.default_int_dtype()), 0)
    return jnp.take(x, order, axis=axis)


def choice(key: KeyArray, a, shape: Shape = (), replace: bool = True, p=None,
           axis: int = 0, mode: str | None = None) -> Array:
    """Random samples from ``a`` (an int n means ``arange(n)``) along ``axis``.

    ``replace=False`` draws distinct entries; ``p`` gives the probability of each entry.
    Algorithms as in JAX: uniform indices / a permutation without ``p``; inverse CDF
    search with ``p``; the Gumbel top-k trick with ``p`` and without replacement
    (``mode`` is passed to ``gumbel`` there).
    """
    _check_key("choice", key)
    mode = _check_gumbel_mode("choice", mode)
    shape = _canonical_shape("choice", shape)
    scalar_a = isinstance(a, (int, np.integer)) or np.ndim(a) == 0
    if scalar_a:
        n_inputs = int(a)
        arr = None
    else:
        arr = jnp.asarray(a)
        axis = axis % arr.ndim
        n_inputs = arr.shape[axis]
    n_draws = math.prod(shape)
    int_dtype = dtypes.default_int_dtype()
    if n_draws == 0:
        return jnp.zeros(shape if scalar_a else arr.shape[:axis] + shape + arr.shape[axis + 1:],
                         int_dtype if scalar_a else arr.dtype)
    if n_inputs <= 0:
        raise ValueError("random.choice: a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"random.choice: cannot take {n_draws} samples from a population of "
                         f"{n_inputs} when replace=False")
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n_inputs)
        else:
            ind = lax.slice_in_dim(permutation(key, n_inputs), 0, n_draws)
    else:
        p = jnp.asarray(p)
        if not dtypes.is_float(p.dtype):
            p = p.astype(dtypes.default_float_dtype())
        if p.shape != (n_inputs,):
            raise ShapeError(f"random.choice: p must have shape ({n_inputs},) to match a, "
                             f"got {get_aval(p).str_short()}")
        if replace:
            p_cuml = jnp.cumsum(p)
            r = p_cuml[-1] * (1 - uniform(key, shape, dtype=p.dtype))
            # searchsorted(p_cuml, r, side="left") == the number of entries below r
            ind = jnp.sum((p_cuml < r[..., None]).astype(int_dtype), axis=-1)
        else:
            g = gumbel(key, (n_inputs,), p.dtype, mode) + jnp.log(p)
            ind = lax.slice_in_dim(_argsort_along(-g, 0), 0, n_draws)
    ind = jnp.reshape(ind, shape).astype(int_dtype)
    if scalar_a:
        return ind
    out = jnp.take(arr, jnp.reshape(ind, (-1,)), axis=axis)
    return jnp.reshape(out, arr.shape[:axis] + shape + arr.shape[axis + 1:])
