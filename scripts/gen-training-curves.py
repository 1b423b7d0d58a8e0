#!/usr/bin/env python3
"""Writes the metrics of a real training run: a small MLP trained with numpy, float32 throughout.

The workload of issue #19 ("compression of real training curves"): what a training loop actually logs, with the
hard parts synthetic curves hide: minibatch noise in the low mantissa bits, quantised series (accuracy k/32),
a schedule computed in float64 and cast to float32, and float64 wall-clock timings.

Per step: train/loss, train/acc (k/32), lr (warm-up + cosine, float64 cast to float32), grad_norm, weight_norm
(float32) and step_time_ms (float64, from perf_counter). Every --eval-every steps: eval/loss, eval/acc (k/1024).
Timestamps are wall-clock milliseconds. The model, data and minibatches come from a fixed seed; only the timings
(and so the timestamps) differ between runs.

Output (`--out`, little-endian), read by TallyWorkloads.RecordedRun:
    magic "TCURVES1", u32 series count, then per series:
    u16 name length, name (UTF-8), u8 width of the logged value (4: float32, 8: float64), u64 count,
    i64 steps[count], i64 timestamps[count], f64 values[count] (the doubles a client sends)
"""
import argparse
import math
import struct
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    f32 = np.float32
    features, hidden, classes, batch = 64, 128, 10, 32
    # A Gaussian mixture with label noise: learnable, never perfectly, so the loss keeps its noise.
    centers = rng.normal(0, 1.0, (classes, features)).astype(f32)
    train_n, eval_n = 65_536, 1_024

    def sample(n):
        y = rng.integers(0, classes, n)
        x = (centers[y] + rng.normal(0, 2.2, (n, features))).astype(f32)
        flip = rng.random(n) < 0.05
        y = np.where(flip, rng.integers(0, classes, n), y)
        return x, y

    xtr, ytr = sample(train_n)
    xev, yev = sample(eval_n)
    w1 = (rng.normal(0, 1, (features, hidden)) * math.sqrt(2 / features)).astype(f32)
    b1 = np.zeros(hidden, f32)
    w2 = (rng.normal(0, 1, (hidden, classes)) * math.sqrt(2 / hidden)).astype(f32)
    b2 = np.zeros(classes, f32)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(p) for p in params]
    momentum, base_lr, warmup, decay = f32(0.9), 0.05, min(2_000, args.steps // 10), f32(1e-4)

    def forward(x, y):
        h = np.maximum(x @ w1 + b1, f32(0))
        logits = h @ w2 + b2
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y] + f32(1e-12)).mean(dtype=f32)
        correct = int((logits.argmax(axis=1) == y).sum())
        return h, p, loss, correct

    names = ["train/loss", "train/acc", "lr", "grad_norm", "weight_norm", "step_time_ms", "eval/loss", "eval/acc"]
    widths = {n: 4 for n in names}
    widths["step_time_ms"] = 8
    steps = {n: [] for n in names}
    stamps = {n: [] for n in names}
    values = {n: [] for n in names}

    def log(name, step, ts, value):
        steps[name].append(step)
        stamps[name].append(ts)
        values[name].append(float(value))

    order = rng.permutation(train_n)
    cursor = 0
    t0 = time.time()
    clock = time.perf_counter()
    for step in range(args.steps):
        started = time.perf_counter()
        if cursor + batch > train_n:
            order = rng.permutation(train_n)
            cursor = 0
        idx = order[cursor:cursor + batch]
        cursor += batch
        x, y = xtr[idx], ytr[idx]
        h, p, loss, correct = forward(x, y)
        # Backward (softmax cross-entropy, ReLU), float32.
        g = p.copy()
        g[np.arange(batch), y] -= f32(1)
        g /= f32(batch)
        gw2 = h.T @ g
        gb2 = g.sum(axis=0)
        gh = (g @ w2.T) * (h > 0)
        gw1 = x.T @ gh
        gb1 = gh.sum(axis=0)
        grads = [gw1 + decay * w1, gb1, gw2 + decay * w2, gb2]
        grad_norm = np.sqrt(sum(np.square(gr, dtype=f32).sum(dtype=f32) for gr in grads), dtype=f32)
        if step < warmup:
            lr64 = base_lr * (step + 1) / warmup
        else:
            lr64 = 0.5 * base_lr * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))
        lr = f32(lr64)
        for prm, vel, gr in zip(params, velocity, grads):
            vel *= momentum
            vel += gr
            prm -= lr * vel
        weight_norm = np.sqrt(sum(np.square(prm, dtype=f32).sum(dtype=f32) for prm in params), dtype=f32)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        ts = int(t0 * 1000 + (time.perf_counter() - clock) * 1000)
        log("train/loss", step, ts, f32(loss))
        log("train/acc", step, ts, f32(correct) / f32(batch))
        log("lr", step, ts, lr)
        log("grad_norm", step, ts, grad_norm)
        log("weight_norm", step, ts, weight_norm)
        log("step_time_ms", step, ts, elapsed_ms)
        if (step + 1) % args.eval_every == 0:
            _, _, eloss, ecorrect = forward(xev, yev)
            log("eval/loss", step, ts, f32(eloss))
            log("eval/acc", step, ts, f32(ecorrect) / f32(eval_n))
        if step % 100_000 == 0 and step:
            print(f"step {step}: loss {float(loss):.4f}", file=sys.stderr)

    with open(args.out, "wb") as f:
        f.write(b"TCURVES1")
        f.write(struct.pack("<I", len(names)))
        for n in names:
            raw = n.encode()
            f.write(struct.pack("<H", len(raw)) + raw + struct.pack("<BQ", widths[n], len(steps[n])))
            f.write(np.asarray(steps[n], dtype="<i8").tobytes())
            f.write(np.asarray(stamps[n], dtype="<i8").tobytes())
            f.write(np.asarray(values[n], dtype="<f8").tobytes())
    total = sum(len(steps[n]) for n in names)
    print(f"{total} points in {len(names)} series, {time.time() - t0:.0f} s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
