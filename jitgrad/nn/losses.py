"""Loss functions with Optax's names: per-example losses, reduced by the caller.

    loss = losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

Every loss checks its labels: an integer label array where one-hot targets are expected
(or the reverse), or a shape that does not line up with the predictions, is a clear
error saying which function to use instead.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import numpy as jnp
from ..core import dtypes
from ..core.errors import DTypeError, ShapeError
from ..core.pytree import tree_leaves_with_path, keystr
from ..core.trace import get_aval
from .functions import log_sigmoid, log_softmax, logsumexp

Array = Any


def _aval(x):
    return get_aval(x)


def _check_logits(name: str, logits) -> Array:
    logits = jnp.asarray(logits)
    if not dtypes.is_float(logits.dtype):
        raise DTypeError(f"{name}: logits must be floating point, got {_aval(logits).str_short()}")
    if logits.ndim < 1:
        raise ShapeError(f"{name}: logits need a class axis, got {_aval(logits).str_short()}")
    return logits


def softmax_cross_entropy(logits: Array, labels: Array, axis: int = -1) -> Array:
    """``-sum(labels * log_softmax(logits), axis)``: one-hot (or probability) targets.

    ``labels`` has the shape of ``logits``. For integer class ids use
    ``softmax_cross_entropy_with_integer_labels``.
    """
    name = "softmax_cross_entropy"
    logits = _check_logits(name, logits)
    labels = jnp.asarray(labels)
    if not dtypes.is_float(labels.dtype):
        raise DTypeError(
            f"{name}: labels must be one-hot or probabilities (floating point) with the shape "
            f"of logits {_aval(logits).str_short()}, got {_aval(labels).str_short()}",
            hint="For integer class ids use softmax_cross_entropy_with_integer_labels(logits, "
                 "labels), or convert with jitgrad.nn.one_hot(labels, num_classes).")
    if labels.shape != logits.shape:
        raise ShapeError(f"{name}: labels {_aval(labels).str_short()} must have the shape of "
                         f"logits {_aval(logits).str_short()}")
    return -jnp.sum(labels * log_softmax(logits, axis=axis), axis=axis)


def softmax_cross_entropy_with_integer_labels(logits: Array, labels: Array,
                                              axis: int = -1) -> Array:
    """``logsumexp(logits) - logits[label]`` per example: integer class-id targets.

    ``labels`` has the shape of ``logits`` without the class ``axis``, and an integer dtype.
    """
    name = "softmax_cross_entropy_with_integer_labels"
    logits = _check_logits(name, logits)
    labels = jnp.asarray(labels)
    axis = axis % logits.ndim
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    if not dtypes.is_int(labels.dtype):
        raise DTypeError(
            f"{name}: labels must be integer class ids of shape {batch_shape}, got "
            f"{_aval(labels).str_short()}",
            hint="For one-hot or probability targets use softmax_cross_entropy(logits, labels); "
                 "otherwise convert with labels.astype(jnp.int32).")
    if labels.shape != batch_shape:
        hint = None
        if labels.shape == logits.shape:
            hint = "These look like one-hot labels: use softmax_cross_entropy instead."
        raise ShapeError(f"{name}: labels {_aval(labels).str_short()} must have the shape of "
                         f"logits {_aval(logits).str_short()} without its class axis "
                         f"({batch_shape})", hint=hint)
    picked = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis, mode="clip")
    return logsumexp(logits, axis=axis) - jnp.squeeze(picked, axis)


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """Elementwise binary cross-entropy of ``sigmoid(logits)`` against labels in [0, 1],
    computed from the logits without overflow."""
    name = "sigmoid_binary_cross_entropy"
    logits = _check_logits(name, logits) if jnp.asarray(logits).ndim else jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if labels.shape != logits.shape:
        raise ShapeError(f"{name}: labels {_aval(labels).str_short()} must have the shape of "
                         f"logits {_aval(logits).str_short()}")
    labels = labels.astype(logits.dtype)
    return -labels * log_sigmoid(logits) - (1.0 - labels) * log_sigmoid(-logits)


binary_cross_entropy_with_logits = sigmoid_binary_cross_entropy


def _check_same_shape(name: str, predictions, targets):
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.shape != targets.shape:
        raise ShapeError(f"{name}: predictions {_aval(predictions).str_short()} and targets "
                         f"{_aval(targets).str_short()} must have the same shape",
                         hint="Reshape the targets (e.g. y[:, None]) so they line up.")
    return predictions, targets


def squared_error(predictions: Array, targets: Array | None = None) -> Array:
    """Elementwise ``(predictions - targets) ** 2`` (targets default to 0)."""
    if targets is None:
        return jnp.square(jnp.asarray(predictions))
    predictions, targets = _check_same_shape("squared_error", predictions, targets)
    return jnp.square(predictions - targets)


def l2_loss(predictions: Array, targets: Array | None = None) -> Array:
    """Elementwise ``0.5 * (predictions - targets) ** 2`` (Optax's l2_loss)."""
    return 0.5 * squared_error(predictions, targets)


def mean_squared_error(predictions: Array, targets: Array) -> Array:
    """The mean over all entries of ``(predictions - targets) ** 2`` (a scalar)."""
    predictions, targets = _check_same_shape("mean_squared_error", predictions, targets)
    return jnp.mean(jnp.square(predictions - targets))


def l2_regularization(params: Any, predicate: Callable[[str, Any], bool] | None = None) -> Array:
    """``0.5 * sum(p ** 2)`` over the arrays of a parameter tree; multiply by your
    weight-decay coefficient and add to the loss.

    ``predicate(path, leaf)`` selects leaves (``path`` is like ``"['Dense_0']['kernel']"``);
    e.g. ``lambda path, _: path.endswith("['kernel']")`` leaves biases out.
    """
    total = None
    for path, leaf in tree_leaves_with_path(params):
        if predicate is not None and not predicate(keystr(path), leaf):
            continue
        term = jnp.sum(jnp.square(leaf))
        total = term if total is None else total + term
    return 0.5 * total if total is not None else jnp.zeros(())


__all__ = [
    "binary_cross_entropy_with_logits", "l2_loss", "l2_regularization", "mean_squared_error",
    "sigmoid_binary_cross_entropy", "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "squared_error",
]
