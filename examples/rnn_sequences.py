"""A recurrent network written with ``lax.scan`` learns to add up sequences of numbers.

    python examples/rnn_sequences.py           # R^2 > 0.99 on held-out sequences
    python examples/rnn_sequences.py --quick   # a short run, for tests

Each example is a sequence of T numbers drawn uniformly from [-1, 1]; the target is their
sum. An Elman RNN, ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``, reads the sequence with
``jitgrad.lax.scan`` (one compiled loop, differentiated through by ``grad``), and a linear
read-out of the last state predicts the sum. The loop is hand-written: ``value_and_grad``,
gradient clipping and Adam from ``jitgrad.optim``, all inside one jitted step.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402
from jitgrad import lax, nn, optim, random, training  # noqa: E402


def make_data(key, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences ``(n, length, 1)`` of U(-1, 1) numbers and their sums ``(n,)``."""
    x = np.asarray(random.uniform(key, (n, length, 1), minval=-1.0, maxval=1.0))
    return x, x.sum(axis=(1, 2))


def init_params(key, hidden: int) -> dict:
    kx, kh, ko = random.split(key, 3)
    return {"w_x": nn.initializers.glorot_normal()(kx, (1, hidden)),
            "w_h": nn.initializers.normal(1.0 / np.sqrt(hidden))(kh, (hidden, hidden)),
            "b": jnp.zeros((hidden,)),
            "w_out": nn.initializers.glorot_normal()(ko, (hidden, 1)),
            "b_out": jnp.zeros((1,))}


def predict(params: dict, xs):
    """Run the RNN over ``xs`` (batch, time, 1) and read out the last hidden state."""
    batch = xs.shape[0]

    def cell(h, x_t):                       # carry: the hidden state; x_t: (batch, 1)
        h = jnp.tanh(x_t @ params["w_x"] + h @ params["w_h"] + params["b"])
        return h, None

    h0 = jnp.zeros((batch, params["w_h"].shape[0]))
    h_last, _ = lax.scan(cell, h0, jnp.swapaxes(xs, 0, 1))   # scan over time
    return (h_last @ params["w_out"] + params["b_out"])[:, 0]


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="300 steps (for tests)")
    args = parser.parse_args(argv)
    steps = 300 if args.quick else args.steps
    start = time.perf_counter()
    training.limit_blas_threads(1)   # small matmuls: extra BLAS threads only spin

    key = random.key(args.seed)
    k_train, k_test, k_init = random.split(key, 3)
    x_train, y_train = make_data(k_train, 8192, args.length)
    x_test, y_test = make_data(k_test, 1024, args.length)
    params = init_params(k_init, args.hidden)
    optimizer = optim.chain(optim.clip_by_global_norm(1.0),
                            optim.adam(optim.cosine_decay_schedule(args.learning_rate, steps)))
    opt_state = optimizer.init(params)

    def loss_fn(params, xs, ys):
        return jnp.mean((predict(params, xs) - ys) ** 2)

    @jitgrad.jit
    def train_step(params, opt_state, xs, ys):
        loss, grads = jitgrad.value_and_grad(loss_fn)(params, xs, ys)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    evaluate = jitgrad.jit(loss_fn)
    rows = np.random.default_rng(args.seed)
    for step in range(steps):
        idx = rows.integers(0, len(x_train), args.batch_size)
        params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
        if step % max(steps // 6, 1) == 0 or step == steps - 1:
            print(f"step {step:5d}  train MSE {float(loss):.4f}  "
                  f"test MSE {float(evaluate(params, x_test, y_test)):.4f}")
    mse = float(evaluate(params, x_test, y_test))
    r2 = 1.0 - mse / float(np.var(y_test))
    example = x_test[:1]
    print(f"example: sum of {[round(float(v), 2) for v in example[0, :, 0]]} = {y_test[0]:.3f}, "
          f"predicted {float(predict(params, example)[0]):.3f}")
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(f"test MSE: {mse:.4f} (variance of the sums {np.var(y_test):.3f})")
    print(f"test R^2: {r2:.4f}")
    return r2


if __name__ == "__main__":
    main()
