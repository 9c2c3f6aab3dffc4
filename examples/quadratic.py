"""Minimise y = a x^2 + b x + c by gradient descent: the TensorFlow 1 tutorial, the jitgrad way.

    python examples/quadratic.py            # a=10, b=-5, c=4, x from 0, step 0.02
    python examples/quadratic.py --quick    # the first 5 steps

Each row is ``step x y``: x after the update and y before it, as the tutorial printed
them (``0 0.1 4.0``, ``1 0.16 3.6``, ``2 0.196 3.456``, ...). Values are float32 and shown
to 6 significant digits. The minimum is at x = -b / 2a = 0.25, y = 3.375.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402


def show(v) -> str:
    """A float32 value to 6 significant digits, written as Python writes floats (4.0, 0.16)."""
    return repr(float(f"{float(v):.6g}"))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=float, default=10.0)
    parser.add_argument("--b", type=float, default=-5.0)
    parser.add_argument("--c", type=float, default=4.0)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="5 steps (for tests)")
    args = parser.parse_args(argv)
    steps = 5 if args.quick else args.steps

    def y(x):
        return args.a * x * x + args.b * x + args.c

    @jitgrad.jit
    def step(x):
        # One gradient-descent step: the value before the update and the updated x.
        value, slope = jitgrad.value_and_grad(y)(x)
        return x - args.learning_rate * slope, value

    x = jnp.zeros((), jnp.float32)
    for i in range(steps):
        x, value = step(x)
        print(i, show(x), show(value))
    print(f"minimum found: x = {float(x):.4f}, y = {float(y(x)):.4f} "
          f"(exact: x = {-args.b / (2 * args.a):.4f}, y = {args.c - args.b ** 2 / (4 * args.a):.4f})")
    return float(x)


if __name__ == "__main__":
    main()
