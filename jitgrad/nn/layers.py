"""Pure functional layers: configuration objects whose parameters live in pytrees.

The layer protocol
------------------
A layer object holds only its configuration (sizes, initializers); it never holds arrays.
Every layer has two methods::

    params, state, out_shape = layer.init(key, input_shape)
    y, new_state = layer.apply(params, state, x, *, key=None, train=False)

* ``input_shape``/``out_shape`` are **per-example** shapes, without the batch axis
  (``(64,)`` for a vector of 64 features, ``(1, 8, 8)`` for a one-channel 8x8 image).
  ``x`` and ``y`` carry a leading batch axis: ``x.shape == (batch,) + input_shape``.
* ``params`` are the trainable parameters: a dict of arrays (``{}`` if none). This is what
  ``grad`` differentiates and an optimiser updates.
* ``state`` holds non-trainable values a layer updates as it runs (BatchNorm's running
  statistics), also a dict. ``apply`` returns the new state; with ``train=False`` the state
  comes back unchanged. Nothing is mutated: thread it through your loop like ``params``.
* ``key`` is a PRNG key for layers that need randomness (Dropout in training mode).
* ``train`` selects training behaviour (dropout active, batch statistics in BatchNorm).

``Sequential`` composes layers; its ``params``/``state`` are dicts keyed by each layer's
name (``"Dense_0"``, ``"Conv2D_0"``, ``"Dense_1"``, ...; or the ``name=`` you give), holding
only the layers that have any. Plain functions (``nn.relu``) can be used as layers.

Images are NCHW and conv kernels OIHW, as in ``lax.conv``.

Errors: an input of the wrong shape names the layer and both shapes; a parameter tree that
does not fit the layer names the path in the tree (``params['Dense_1']['kernel']``), what
was found and what was expected.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import lax
from .. import numpy as jnp
from .. import random
from ..core import dtypes
from ..core.errors import DTypeError, JitgradError, ShapeError
from ..core.trace import get_aval
from ..ops.conv import conv_output_shape, padtype_to_pads
from . import initializers as init_lib

Array = Any
Params = dict
State = dict
Shape = tuple


class ParamTreeError(JitgradError, ValueError):
    """A parameter (or state) tree that does not have the structure or shapes a layer needs."""


def _shape_str(x) -> str:
    try:
        return get_aval(x).str_short()
    except Exception:   # noqa: BLE001 - any non-array: say what it is
        return type(x).__name__


# ================================================================== the base class

class Layer:
    """Base class of layers; see the module docstring for the protocol."""

    has_params = False   # does init return non-empty params?
    has_state = False    # does init return non-empty state?
    uses_key = False     # does apply need a PRNG key when training?

    def __init__(self, name: str | None = None):
        self.name = name
        self._path = ""   # where this layer's params sit in an enclosing tree: "['Dense_1']"

    # -- the protocol
    def init(self, key, input_shape: Sequence[int]) -> tuple[Params, State, Shape]:
        """Create ``(params, state, output_shape)`` for inputs of per-example ``input_shape``."""
        return {}, {}, self.output_shape(tuple(input_shape))

    def apply(self, params: Params, state: State, x: Array, *, key=None,
              train: bool = False) -> tuple[Array, State]:
        """Run the layer on a batch ``x``; returns ``(y, new_state)``."""
        raise NotImplementedError

    def output_shape(self, input_shape: Shape) -> Shape:
        """The per-example output shape for a per-example ``input_shape``."""
        raise NotImplementedError

    # -- helpers for subclasses
    @property
    def label(self) -> str:
        """How errors name this layer: ``Dense layer 'Dense_1'``."""
        kind = type(self).__name__
        return f"{kind} layer {self.name!r}" if self.name else f"{kind} layer"

    def _input_error(self, x, expected: str, hint: str | None = None) -> ShapeError:
        return ShapeError(f"{self.label} expected input {expected} but got {_shape_str(x)}",
                          hint=hint or "Check the output shape of the previous layer (or of "
                                       "your data) against what this layer was built for.")

    def _check_params(self, params, shapes: Mapping[str, tuple], tree: str = "params") -> None:
        """``params`` must be a dict with exactly these keys and array shapes (``None`` in an
        expected shape matches any size; the input check reports that axis)."""
        where = f"{tree}{self._path}"
        if not isinstance(params, Mapping):
            raise ParamTreeError(f"{where} for {self.label} must be a dict with keys "
                                 f"{sorted(shapes)}, got {type(params).__name__}")
        missing = sorted(set(shapes) - set(params))
        extra = sorted(set(params) - set(shapes))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(repr(k) for k in missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(repr(k) for k in extra)}")
            raise ParamTreeError(f"{where} for {self.label} does not fit: {'; '.join(parts)} "
                                 f"(expected keys {sorted(shapes)})",
                                 hint="Use the params returned by init for this model.")
        for k, shape in shapes.items():
            got = get_aval(params[k]).shape
            if len(got) != len(shape) or any(e is not None and e != g for g, e in zip(got, shape)):
                want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + \
                    ("," if len(shape) == 1 else "") + ")"
                raise ParamTreeError(
                    f"{where}[{k!r}] has shape {got} but {self.label} expects {want}",
                    hint="The parameter tree does not match this model's configuration; "
                         "re-run init or load the matching checkpoint.")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({fields})"

    def _config(self) -> dict:
        return {}


def _float_dtype(dtype) -> np.dtype:
    return dtypes.default_float_dtype() if dtype is None else dtypes.canonicalize_dtype(dtype)


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v


# ================================================================== dense and conv

class Dense(Layer):
    """``y = x @ kernel + bias`` on the last axis. params: kernel ``(in, features)``, bias
    ``(features,)``. Default init: LeCun normal kernel, zero bias (as Flax)."""

    has_params = True

    def __init__(self, features: int, use_bias: bool = True,
                 kernel_init: Callable = init_lib.lecun_normal(),
                 bias_init: Callable = init_lib.zeros, dtype=None, name: str | None = None):
        super().__init__(name)
        self.features, self.use_bias = int(features), use_bias
        self.kernel_init, self.bias_init, self.dtype = kernel_init, bias_init, dtype

    def _config(self):
        return {"features": self.features}

    def output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"{self.label} needs inputs with a feature axis, got per-example "
                             f"shape {input_shape}")
        return tuple(input_shape[:-1]) + (self.features,)

    def init(self, key, input_shape):
        input_shape = tuple(input_shape)
        out = self.output_shape(input_shape)
        dt = _float_dtype(self.dtype)
        k1, k2 = random.split(key)
        params = {"kernel": self.kernel_init(k1, (input_shape[-1], self.features), dt)}
        if self.use_bias:
            params["bias"] = self.bias_init(k2, (self.features,), dt)
        return params, {}, out

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        shapes = {"kernel": (None, self.features)}
        if self.use_bias:
            shapes["bias"] = (self.features,)
        self._check_params(params, shapes)
        kernel = params["kernel"]
        n_in = get_aval(kernel).shape[0]
        if x.ndim < 2 or x.shape[-1] != n_in:
            raise self._input_error(x, f"(batch, ..., {n_in})",
                                    hint=f"Its kernel is {get_aval(kernel).shape}: inputs need "
                                         f"{n_in} features on their last axis.")
        y = jnp.matmul(x, params["kernel"])
        if self.use_bias:
            y = y + params["bias"]
        return y, state


class Conv2D(Layer):
    """2-d convolution of NCHW inputs with an OIHW kernel (``lax.conv_general_dilated``).

    ``padding``: ``"SAME"``, ``"VALID"`` or explicit ((top, bottom), (left, right)).
    params: kernel ``(features, in_channels // feature_group_count, kh, kw)``, bias
    ``(features,)``. Default init: LeCun normal (fans from the OIHW layout), zero bias.
    """

    has_params = True

    def __init__(self, features: int, kernel_size: int | Sequence[int] = 3,
                 strides: int | Sequence[int] = 1, padding: str | Sequence = "SAME",
                 dilation: int | Sequence[int] = 1, feature_group_count: int = 1,
                 use_bias: bool = True, kernel_init: Callable | None = None,
                 bias_init: Callable = init_lib.zeros, dtype=None, name: str | None = None):
        super().__init__(name)
        self.features = int(features)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation = _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)
        self.feature_group_count = int(feature_group_count)
        self.use_bias = use_bias
        self.kernel_init = kernel_init or init_lib.lecun_normal(in_axis=1, out_axis=0)
        self.bias_init, self.dtype = bias_init, dtype

    def _config(self):
        return {"features": self.features, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}

    def _pads(self, hw):
        eff = tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation))
        return padtype_to_pads(hw, eff, self.strides, self.padding)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} needs per-example inputs (channels, height, width), "
                             f"got shape {tuple(input_shape)}")
        hw = tuple(input_shape[1:])
        out_hw = conv_output_shape(hw, self.kernel_size, self.strides, self._pads(hw), (1, 1),
                                   self.dilation)
        return (self.features,) + out_hw

    def init(self, key, input_shape):
        input_shape = tuple(input_shape)
        out = self.output_shape(input_shape)
        c = input_shape[0]
        if c % self.feature_group_count or self.features % self.feature_group_count:
            raise ShapeError(f"{self.label}: {c} input channels and {self.features} features must "
                             f"both divide into {self.feature_group_count} groups")
        dt = _float_dtype(self.dtype)
        k1, k2 = random.split(key)
        kshape = (self.features, c // self.feature_group_count) + self.kernel_size
        params = {"kernel": self.kernel_init(k1, kshape, dt)}
        if self.use_bias:
            params["bias"] = self.bias_init(k2, (self.features,), dt)
        return params, {}, out

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        shapes = {"kernel": (self.features, None) + self.kernel_size}
        if self.use_bias:
            shapes["bias"] = (self.features,)
        self._check_params(params, shapes)
        k_aval = get_aval(params["kernel"])
        c = k_aval.shape[1] * self.feature_group_count
        if x.ndim != 4 or x.shape[1] != c:
            raise self._input_error(x, f"(batch, {c}, height, width) (NCHW)",
                                    hint=f"Its kernel is {k_aval.shape} (OIHW) with "
                                         f"feature_group_count={self.feature_group_count}.")
        y = lax.conv_general_dilated(x, params["kernel"], self.strides, self._pads(x.shape[2:]),
                                     rhs_dilation=self.dilation,
                                     feature_group_count=self.feature_group_count)
        if self.use_bias:
            y = y + jnp.reshape(params["bias"], (1, self.features, 1, 1))
        return y, state


# ================================================================== pooling

class _Pool2D(Layer):
    """Shared code of the NCHW pooling layers."""

    _computation: Callable
    _init_value: float

    def __init__(self, window_shape: int | Sequence[int] = 2,
                 strides: int | Sequence[int] | None = None, padding: str | Sequence = "VALID",
                 name: str | None = None):
        super().__init__(name)
        self.window_shape = _pair(window_shape, "window_shape")
        self.strides = self.window_shape if strides is None else _pair(strides, "strides")
        self.padding = padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)

    def _config(self):
        return {"window_shape": self.window_shape, "strides": self.strides,
                "padding": self.padding}

    def _pads(self, hw):
        return padtype_to_pads(hw, self.window_shape, self.strides, self.padding)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label} needs per-example inputs (channels, height, width), "
                             f"got shape {tuple(input_shape)}")
        hw = tuple(input_shape[1:])
        return (input_shape[0],) + conv_output_shape(hw, self.window_shape, self.strides,
                                                     self._pads(hw), (1, 1), (1, 1))

    def _pool(self, x):
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise self._input_error(x, "(batch, channels, height, width) (NCHW)")
        pads = ((0, 0), (0, 0)) + tuple(self._pads(x.shape[2:]))
        return lax.reduce_window(x, self._init_value, self._computation,
                                 (1, 1) + self.window_shape, (1, 1) + self.strides, pads)


class MaxPool2D(_Pool2D):
    """Max pooling over (height, width) windows of NCHW inputs; strides default to the window."""

    _computation = staticmethod(lax.max)
    _init_value = -np.inf

    def apply(self, params, state, x, *, key=None, train=False):
        return self._pool(x), state


class AvgPool2D(_Pool2D):
    """Average pooling over (height, width) windows of NCHW inputs (padding counts as 0)."""

    _computation = staticmethod(lax.add)
    _init_value = 0.0

    def apply(self, params, state, x, *, key=None, train=False):
        total = self._pool(x)
        return total / np.asarray(math.prod(self.window_shape), total.dtype), state


# ================================================================== reshaping, activations

class Flatten(Layer):
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``."""

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        if x.ndim < 1:
            raise self._input_error(x, "(batch, ...)")
        return jnp.reshape(x, (x.shape[0], -1)), state


class Activation(Layer):
    """A parameterless elementwise (or any shape-preserving-per-example) function as a layer."""

    def __init__(self, fn: Callable, name: str | None = None):
        super().__init__(name or getattr(fn, "__name__", "activation"))
        self.fn = fn

    def __repr__(self):
        return f"Activation({getattr(self.fn, '__name__', self.fn)})"

    def output_shape(self, input_shape):
        from ..api import make_ir
        probe = np.zeros((1,) + tuple(input_shape), dtypes.default_float_dtype())
        return tuple(make_ir(self.fn)(probe).out_avals[0].shape[1:])

    def apply(self, params, state, x, *, key=None, train=False):
        return self.fn(x), state


# ================================================================== regularisation

class Dropout(Layer):
    """Zero each entry with probability ``rate`` while training, scaling the rest by
    ``1 / (1 - rate)`` (inverted dropout); the identity in evaluation. Needs ``key=`` when
    ``train=True``."""

    uses_key = True

    def __init__(self, rate: float, name: str | None = None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def _config(self):
        return {"rate": self.rate}

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        if not train or self.rate == 0.0:
            return x, state
        if key is None:
            raise ValueError(f"{self.label} needs a PRNG key in training mode: call "
                             "apply(params, state, x, key=key, train=True)")
        keep = random.bernoulli(key, 1.0 - self.rate, x.shape)
        scaled = x / np.asarray(1.0 - self.rate, x.dtype)
        return jnp.where(keep, scaled, jnp.zeros_like(scaled)), state


# ================================================================== normalisation

class BatchNorm(Layer):
    """Batch normalisation over every axis but the feature ``axis`` (1: NCHW channels, or
    the features of a (batch, features) input).

    Training (``train=True``) normalises with the batch's mean and (biased) variance and
    returns running averages updated as ``momentum * running + (1 - momentum) * batch``
    (Flax's convention); evaluation normalises with the running averages and returns the
    state unchanged. params: scale (ones), bias (zeros); state: mean (zeros), var (ones).
    """

    has_params = True
    has_state = True

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-5, axis: int = 1,
                 use_scale: bool = True, use_bias: bool = True, dtype=None,
                 name: str | None = None):
        super().__init__(name)
        self.momentum, self.epsilon, self.axis = float(momentum), float(epsilon), int(axis)
        self.use_scale, self.use_bias, self.dtype = use_scale, use_bias, dtype

    def _config(self):
        return {"momentum": self.momentum, "epsilon": self.epsilon, "axis": self.axis}

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def init(self, key, input_shape):
        input_shape = tuple(input_shape)
        batched = (1,) + input_shape
        if not -len(batched) <= self.axis < len(batched) or self.axis % len(batched) == 0:
            raise ShapeError(f"{self.label}: feature axis {self.axis} does not fit per-example "
                             f"shape {input_shape} (axis 0 is the batch)")
        c = batched[self.axis % len(batched)]
        dt = _float_dtype(self.dtype)
        params = {}
        if self.use_scale:
            params["scale"] = jnp.ones((c,), dt)
        if self.use_bias:
            params["bias"] = jnp.zeros((c,), dt)
        state = {"mean": jnp.zeros((c,), dt), "var": jnp.ones((c,), dt)}
        return params, state, input_shape

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        if x.ndim < 2 or not -x.ndim <= self.axis < x.ndim:
            raise self._input_error(x, f"(batch, ...) with a feature axis {self.axis}")
        axis = self.axis % x.ndim
        c = x.shape[axis]
        shapes = {}
        if self.use_scale:
            shapes["scale"] = (c,)
        if self.use_bias:
            shapes["bias"] = (c,)
        running = state.get("mean") if isinstance(state, Mapping) else None
        if running is not None and get_aval(running).shape != (c,):
            raise self._input_error(x, f"{get_aval(running).shape[0]} features on axis {axis}",
                                    hint="The running statistics were built for another input.")
        self._check_params(params, shapes)
        self._check_params(state, {"mean": (c,), "var": (c,)}, tree="state")
        reduce_axes = tuple(a for a in range(x.ndim) if a != axis)
        bshape = tuple(c if a == axis else 1 for a in range(x.ndim))
        if train:
            mean = jnp.mean(x, axis=reduce_axes)
            var = jnp.mean(jnp.square(x - jnp.reshape(mean, bshape)), axis=reduce_axes)
            m = self.momentum
            new_state = {"mean": m * state["mean"] + (1.0 - m) * lax.stop_gradient(mean),
                         "var": m * state["var"] + (1.0 - m) * lax.stop_gradient(var)}
        else:
            mean, var, new_state = state["mean"], state["var"], state
        inv = lax.rsqrt(var + np.asarray(self.epsilon, get_aval(var).dtype))
        if self.use_scale:
            inv = inv * params["scale"]
        y = (x - jnp.reshape(mean, bshape)) * jnp.reshape(inv, bshape)
        if self.use_bias:
            y = y + jnp.reshape(params["bias"], bshape)
        return y, new_state


class LayerNorm(Layer):
    """Normalise each example over its last axis, then scale and shift (Flax's defaults:
    epsilon 1e-6, scale ones, bias zeros, both of the last axis's size)."""

    has_params = True

    def __init__(self, epsilon: float = 1e-6, use_scale: bool = True, use_bias: bool = True,
                 dtype=None, name: str | None = None):
        super().__init__(name)
        self.epsilon, self.use_scale, self.use_bias, self.dtype = float(epsilon), use_scale, \
            use_bias, dtype

    def _config(self):
        return {"epsilon": self.epsilon}

    def output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"{self.label} needs a feature axis, got per-example shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def init(self, key, input_shape):
        out = self.output_shape(tuple(input_shape))
        dt = _float_dtype(self.dtype)
        f = out[-1]
        params = {}
        if self.use_scale:
            params["scale"] = jnp.ones((f,), dt)
        if self.use_bias:
            params["bias"] = jnp.zeros((f,), dt)
        return params, {}, out

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        if x.ndim < 2:
            raise self._input_error(x, "(batch, ..., features)")
        f = x.shape[-1]
        shapes = {}
        if self.use_scale:
            shapes["scale"] = (f,)
        if self.use_bias:
            shapes["bias"] = (f,)
        if isinstance(params, Mapping) and "scale" in params and \
                get_aval(params["scale"]).shape != (f,):
            raise self._input_error(x, f"(batch, ..., {get_aval(params['scale']).shape[0]})")
        self._check_params(params, shapes)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        y = (x - mean) * lax.rsqrt(var + np.asarray(self.epsilon, x.dtype))
        if self.use_scale:
            y = y * params["scale"]
        if self.use_bias:
            y = y + params["bias"]
        return y, state


# ================================================================== embedding

class Embedding(Layer):
    """A lookup table: integer ids ``(batch, ...)`` -> vectors ``(batch, ..., features)``.

    params: embedding ``(num_embeddings, features)``, initialised N(0, 1) by default.
    Out-of-range ids are clamped (gather semantics).
    """

    has_params = True

    def __init__(self, num_embeddings: int, features: int,
                 embedding_init: Callable = init_lib.normal(stddev=1.0), dtype=None,
                 name: str | None = None):
        super().__init__(name)
        self.num_embeddings, self.features = int(num_embeddings), int(features)
        self.embedding_init, self.dtype = embedding_init, dtype

    def _config(self):
        return {"num_embeddings": self.num_embeddings, "features": self.features}

    def output_shape(self, input_shape):
        return tuple(input_shape) + (self.features,)

    def init(self, key, input_shape):
        table = self.embedding_init(key, (self.num_embeddings, self.features),
                                    _float_dtype(self.dtype))
        return {"embedding": table}, {}, self.output_shape(tuple(input_shape))

    def apply(self, params, state, x, *, key=None, train=False):
        x = jnp.asarray(x)
        self._check_params(params, {"embedding": (self.num_embeddings, self.features)})
        if not dtypes.is_int(x.dtype):
            raise DTypeError(f"{self.label} expected integer ids but got {_shape_str(x)}",
                             hint="Convert with x.astype(jnp.int32); to embed real-valued "
                                  "features use Dense instead.")
        return jnp.take(params["embedding"], x, axis=0, mode="clip"), state


# ================================================================== composition

def _as_layer(obj) -> Layer:
    if isinstance(obj, Layer):
        return copy.copy(obj)
    if callable(obj):
        return Activation(obj)
    raise TypeError(f"Sequential: {obj!r} is neither a Layer nor a function")


class Sequential(Layer):
    """Layers applied one after the other. params/state: ``{layer name: its params}``.

    Names are given in order of appearance, counted per type (``Dense_0``, ``Dense_1``,
    ``Conv2D_0``); a layer constructed with ``name=`` keeps it. Functions such as
    ``nn.relu`` are wrapped as parameterless layers.
    """

    def __init__(self, layers: Sequence[Any], name: str | None = None):
        super().__init__(name)
        self.layers: list[Layer] = [_as_layer(l) for l in layers]
        counts: dict[str, int] = {}
        seen: set[str] = set()
        for layer in self.layers:
            base = type(layer).__name__ if not isinstance(layer, Activation) else layer.name
            if layer.name is None or isinstance(layer, Activation):
                n = counts.get(base, 0)
                counts[base] = n + 1
                layer.name = f"{base}_{n}"
            if layer.name in seen:
                raise ValueError(f"Sequential: two layers are named {layer.name!r}")
            seen.add(layer.name)
        self._set_paths()

    def _set_paths(self) -> None:
        for layer in self.layers:
            layer._path = f"{self._path}[{layer.name!r}]"
            if isinstance(layer, Sequential):
                layer._set_paths()

    @property
    def has_params(self):   # noqa: D401 - a property of the composition
        return any(l.has_params for l in self.layers)

    @property
    def has_state(self):
        return any(l.has_state for l in self.layers)

    @property
    def uses_key(self):
        return any(l.uses_key for l in self.layers)

    def __repr__(self):
        inner = ",\n  ".join(f"{l.name}: {l!r}" for l in self.layers)
        return f"Sequential(\n  {inner}\n)"

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def init(self, key, input_shape):
        keys = random.split(key, max(len(self.layers), 1))
        params, state = {}, {}
        shape = tuple(input_shape)
        for i, layer in enumerate(self.layers):
            p, s, shape = layer.init(keys[i], shape)
            if layer.has_params:
                params[layer.name] = p
            if layer.has_state:
                state[layer.name] = s
        return params, state, shape

    def _check_top(self, tree, kind: str, attr: str) -> None:
        expected = {l.name for l in self.layers if getattr(l, attr)}
        if not isinstance(tree, Mapping):
            raise ParamTreeError(f"{kind}{self._path} for {self.label} must be a dict keyed by "
                                 f"layer name {sorted(expected)}, got {type(tree).__name__}")
        missing, extra = sorted(expected - set(tree)), sorted(set(tree) - expected)
        if missing or extra:
            parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + \
                    ([f"unexpected {', '.join(map(repr, extra))}"] if extra else [])
            raise ParamTreeError(f"{kind}{self._path} does not fit {self.label}: "
                                 f"{'; '.join(parts)} (expected keys {sorted(expected)})",
                                 hint="Use the params/state returned by this model's init.")

    @property
    def label(self) -> str:
        return f"Sequential model {self.name!r}" if self.name else "Sequential model"

    def apply(self, params, state, x, *, key=None, train=False):
        self._check_top(params, "params", "has_params")
        self._check_top(state, "state", "has_state")
        new_state = {}
        for i, layer in enumerate(self.layers):
            sub = random.fold_in(key, i) if key is not None and layer.uses_key and train else None
            x, s = layer.apply(params.get(layer.name, {}), state.get(layer.name, {}), x,
                               key=sub, train=train)
            if layer.has_state:
                new_state[layer.name] = s
        return x, new_state
