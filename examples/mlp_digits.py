"""Train an MLP on scikit-learn's handwritten digits with jitgrad (the README's main job).

    python examples/mlp_digits.py              # ~97-99% test accuracy, well under 2 minutes
    python examples/mlp_digits.py --quick      # 2 epochs, for tests

A 64-256-256-10 ReLU network trained with AdamW (cosine learning-rate decay) on
minibatches, with the common loop of ``jitgrad.training.fit``: a progress bar, evaluation on
a validation split after every epoch, early stopping on the validation loss (keeping the
best epoch), a checkpoint per epoch (``--out``/checkpoints, resumable with ``--resume``) and
the learning curves as PNG.
The last lines report the test accuracy of the best epoch and where the model was saved.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

from jitgrad import data, nn, optim, random, training  # noqa: E402


def build_model() -> nn.Sequential:
    return nn.Sequential([nn.Dense(256), nn.relu, nn.Dense(256), nn.relu, nn.Dense(10)])


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mlp_digits", help="checkpoints and curves go here")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quick", action="store_true", help="2 epochs (for tests)")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    start = time.perf_counter()
    training.limit_blas_threads(1)   # small matmuls: extra BLAS threads only spin

    # Data: 1,797 8x8 digits -> 72% train, 8% validation (early stopping), 20% test.
    x, y = data.load_digits()
    x_rest, x_test, y_rest, y_test = data.train_test_split(args.seed, x, y, test_size=0.2,
                                                           stratify=y)
    x_train, x_val, y_train, y_val = data.train_test_split(args.seed + 1, x_rest, y_rest,
                                                           test_size=0.1, stratify=y_rest)
    print(f"digits: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test")

    model = build_model()
    key = random.key(args.seed)
    loader = data.DataLoader(x_train, y_train, batch_size=args.batch_size,
                             key=random.fold_in(key, 1), drop_last=True)   # one batch shape
    schedule = optim.cosine_decay_schedule(args.learning_rate, epochs * len(loader))
    optimizer = optim.adamw(schedule, weight_decay=args.weight_decay)
    state = training.create_train_state(model, optimizer, key, input_shape=(64,))

    if not args.resume:   # a fresh run: forget older checkpoints in --out
        manager = training.CheckpointManager(os.path.join(args.out, "checkpoints"))
        for n in manager.numbers():
            os.unlink(manager.path(n))
    result = training.fit(
        training.make_train_step(model, optimizer), state, loader, epochs=epochs,
        evaluate=training.make_evaluate(model, x_val, y_val),
        early_stopping=training.EarlyStopping("val_loss", patience=args.patience),
        checkpoint_dir=os.path.join(args.out, "checkpoints"), resume=args.resume,
        plot_path=os.path.join(args.out, "curves.png"), progress=not args.no_progress)

    test = training.make_evaluate(model, x_test, y_test, prefix="test_")(result.state)
    model_path = training.save_checkpoint(
        os.path.join(args.out, "model.ckpt"),
        {"params": result.state.params, "model_state": result.state.model_state},
        {"model": repr(model), "test_accuracy": test["test_accuracy"]})
    print(f"best epoch: {result.best_epoch}; saved {model_path} and {args.out}/curves.png")
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {test['test_accuracy']:.4f}")
    return test["test_accuracy"]


if __name__ == "__main__":
    main()
