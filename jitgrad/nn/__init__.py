"""``jitgrad.nn``: activations (``jax.nn``'s names), initializers, layers and losses.

    from jitgrad import nn
    model = nn.Sequential([nn.Dense(256), nn.relu, nn.Dense(10)])
    params, state, _ = model.init(key, (64,))
    logits, state = model.apply(params, state, x)
    loss = nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()

See ``jitgrad/nn/layers.py`` for the layer protocol.
"""
from . import initializers, losses  # noqa: F401
from .functions import (celu, elu, gelu, hard_tanh, leaky_relu, log_sigmoid,  # noqa: F401
                        log_softmax, logsumexp, one_hot, relu, relu6, selu, sigmoid, silu,
                        soft_sign, softmax, softplus, standardize, swish, tanh)
from .layers import (Activation, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout,  # noqa: F401
                     Embedding, Flatten, Layer, LayerNorm, MaxPool2D, ParamTreeError,
                     Sequential)
