"""Wall time of training the MLP for 1000 epochs on the full library, on CPU cores.

``--architecture paper`` (the paper's network, one row per state and time) or ``physics``
(the default network of :mod:`supercooled.ml.physics`, one row per state: about 100 rows an
epoch instead of about 7000, so an epoch is much cheaper; early stopping usually ends it
after a few hundred epochs).

The paper reports about one hour for 1000 iterations on a desktop CPU (Ciarella et al. 2023,
section 4.2). This script times :func:`supercooled.ml.network.train_network` (the package's
training loop: masked L1 loss, lasso penalty, a validation pass every epoch on 10 % of the
states held out as :func:`supercooled.ml.ensemble.train_ensemble` does) on the other 90 % of
the library's states, and side by side a bare PyTorch loop over the same training rows and
network (no mask, no penalty, no validation) as a peer, so that the overhead of the package's
loop is visible.

    python benchmarks/mlp_training.py [--library data/library] [--epochs 1000] [--threads 2]
        [--measure 1000]

``--measure N`` times N epochs and scales to ``--epochs`` linearly (each epoch does the same
work; early stopping is switched off here).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from supercooled.library import split_indices
from supercooled.ml.features import N_FEATURES, Scaler, design, load_states, state_design
from supercooled.ml.network import DEFAULT_HIDDEN, TrainConfig, build, forward, train_network
from supercooled.paths import library_path


def bare_loop(rows, scaler, epochs, batch_size, threads, architecture, seed=0):
    """The peer: plain Adam on mean |pred - sim| over the same rows and network (no mask,
    no lasso penalty, no validation pass, no schedule, no early stopping)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build(architecture, DEFAULT_HIDDEN[architecture])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    inputs = [torch.as_tensor(scaler.transform(rows.x), dtype=torch.float32)]
    if hasattr(rows, "weights"):  # physics: interpolation weights onto the library's times
        inputs.append(torch.as_tensor(rows.weights, dtype=torch.float32))
    y = torch.as_tensor(np.nan_to_num(rows.y), dtype=torch.float32)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            (forward(net, *(a[idx] for a in inputs)) - y[idx]).abs().mean().backward()
            opt.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=str(library_path()))
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--measure", type=int, default=None, help="epochs actually timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architecture", default="paper", choices=("paper", "physics"))
    args = parser.parse_args()
    measure = args.measure or args.epochs

    ds = load_states(args.library)
    fit_states, validation_states = split_indices(ds.sizes["state"], 0.1, seed=0)
    make = design if args.architecture == "paper" else state_design
    rows, validation = make(ds, fit_states), make(ds, validation_states)
    scaler = Scaler.fit(rows.x)
    cfg = TrainConfig(epochs=measure, patience=None, threads=args.threads, device=args.device,
                      architecture=args.architecture)
    print(f"library: {ds.sizes['state']} states, {args.architecture} architecture, "
          f"{len(rows.x)} training and {len(validation.x)} validation rows, "
          f"{N_FEATURES} features; {measure} epochs timed, batch {cfg.batch_size}, "
          f"{args.threads} threads, device {args.device}")

    # one untimed epoch of each first (torch's thread pool and allocator warm up)
    warm = TrainConfig(epochs=1, patience=None, threads=args.threads, device=args.device,
                       architecture=args.architecture)
    train_network(rows, validation, scaler, seed=0, config=warm, progress=False)
    bare = args.device == "cpu"
    if bare:
        bare_loop(rows, scaler, 1, cfg.batch_size, args.threads, args.architecture)
    t0 = time.perf_counter()
    train_network(rows, validation, scaler, seed=0, config=cfg, progress=False)
    ours = (time.perf_counter() - t0) * args.epochs / measure
    peer = float("nan")
    if bare:
        t0 = time.perf_counter()
        bare_loop(rows, scaler, measure, cfg.batch_size, args.threads, args.architecture)
        peer = (time.perf_counter() - t0) * args.epochs / measure

    paper = 3600.0
    print(f"supercooled.ml.network.train_network, {args.epochs} epochs: {ours:8.1f} s")
    print(f"bare PyTorch loop (peer),               {args.epochs} epochs: {peer:8.1f} s "
          f"(package / bare = {ours / peer:.2f})")
    print(f"paper (about 1 h, their desktop CPU, their library): paper / ours = "
          f"{paper / ours:.1f}")


if __name__ == "__main__":
    main()
