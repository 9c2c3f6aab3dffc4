"""A LeNet-style convolutional network on the handwritten digits, with a hand-written loop.

    python examples/cnn_digits.py            # >= 98% test accuracy in well under 2 minutes
    python examples/cnn_digits.py --quick    # 1 epoch, for tests

This example writes the training loop itself instead of using ``jitgrad.training.fit``:
``value_and_grad`` of the loss, an Optax-style optimiser, a shuffling ``DataLoader``, a
jitted step, BatchNorm's running statistics threaded through the loop as explicit state,
evaluation after each epoch, and a checkpoint at the end. The network is conv(3x3, 16) -
batchnorm - relu - maxpool(2) - conv(3x3, 32) - batchnorm - relu - maxpool(2) - dense(64) -
relu - dense(10) on 1x8x8 NCHW images.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402
from jitgrad import data, nn, optim, random, training  # noqa: E402


def build_model() -> nn.Sequential:
    return nn.Sequential([
        nn.Conv2D(16, 3), nn.BatchNorm(momentum=0.9), nn.relu, nn.MaxPool2D(2),   # 16 x 4 x 4
        nn.Conv2D(32, 3), nn.BatchNorm(momentum=0.9), nn.relu, nn.MaxPool2D(2),   # 32 x 2 x 2
        nn.Flatten(), nn.Dense(64), nn.relu, nn.Dense(10),
    ])


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/cnn_digits")
    parser.add_argument("--quick", action="store_true", help="1 epoch (for tests)")
    args = parser.parse_args(argv)
    epochs = 1 if args.quick else args.epochs
    start = time.perf_counter()
    training.limit_blas_threads(1)   # small matmuls: extra BLAS threads only spin

    x, y = data.load_digits(as_images=True)
    x_train, x_test, y_train, y_test = data.train_test_split(args.seed, x, y, test_size=0.2,
                                                             stratify=y)
    print(f"digits: {len(x_train)} train, {len(x_test)} test images of shape {x.shape[1:]}")

    model = build_model()
    key = random.key(args.seed)
    init_key, data_key = random.split(key)
    params, model_state, _ = model.init(init_key, (1, 8, 8))
    loader = data.DataLoader(x_train, y_train, batch_size=args.batch_size, key=data_key,
                             drop_last=True)   # one batch shape: one compilation
    schedule = optim.cosine_decay_schedule(args.learning_rate, epochs * len(loader))
    optimizer = optim.adam(schedule)
    opt_state = optimizer.init(params)

    def loss_fn(params, model_state, x, y):
        logits, model_state = model.apply(params, model_state, x, train=True)
        loss = nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, model_state

    @jitgrad.jit
    def train_step(params, model_state, opt_state, x, y):
        (loss, model_state), grads = jitgrad.value_and_grad(loss_fn, has_aux=True)(
            params, model_state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), model_state, opt_state, loss

    @jitgrad.jit
    def predict(params, model_state, x):
        logits, _ = model.apply(params, model_state, x)
        return jnp.argmax(logits, axis=-1)

    def test_accuracy(params, model_state) -> float:
        return float(np.mean(np.asarray(predict(params, model_state, x_test)) == y_test))

    step = 0
    for epoch in range(epochs):
        t0, losses = time.perf_counter(), []
        for xb, yb in loader:
            params, model_state, opt_state, loss = train_step(params, model_state, opt_state,
                                                              xb, yb)
            losses.append(float(loss))
            step += 1
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"the loss is {losses[-1]} at step {step}")
        print(f"epoch {epoch + 1}/{epochs}  loss {np.mean(losses):.4f}  "
              f"test accuracy {test_accuracy(params, model_state):.4f}  "
              f"({time.perf_counter() - t0:.2f} s)")

    accuracy = test_accuracy(params, model_state)
    path = training.save_checkpoint(os.path.join(args.out, "model.ckpt"),
                                    {"params": params, "model_state": model_state},
                                    {"model": repr(model), "test_accuracy": accuracy})
    print(f"saved {path}")
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
