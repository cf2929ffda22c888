"""The paper's network and the package's one training loop.

Network: 304 -> 500 -> 400 -> 400 -> 300 -> 200 -> 2, ReLU between layers, trained with the
mean absolute error (L1 loss) over the unmasked targets plus an L1 (lasso) penalty
lambda * sum |W| on the weight matrices, Adam (with a cosine learning-rate decay by default),
mini-batches, and early stopping on a validation subset of the *training states* (the best
validation epoch is kept). Training is seeded and, on the CPU, deterministic
(``torch.use_deterministic_algorithms``, fixed thread count). :func:`train_network` is the one
training loop: the ensemble, the cross-validation, the command line and the transferability
studies all call it.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.ml.features import N_FEATURES, Design, Scaler

#: Hidden layer widths of the paper's network.
PAPER_HIDDEN = (500, 400, 400, 300, 200)
LR_SCHEDULES = ("cosine", "none")


def build_network(hidden=PAPER_HIDDEN, n_in: int = N_FEATURES, n_out: int = 2):
    """Fully connected n_in -> hidden... -> n_out with ReLU between layers."""
    import torch

    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
        width = int(h)
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


@contextlib.contextmanager
def deterministic(device: str, threads: int | None):
    """Deterministic kernels and a fixed CPU thread count, restored afterwards."""
    import torch

    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    try:
        if device == "cpu":
            torch.use_deterministic_algorithms(True)
        torch.set_num_threads(int(threads or min(2, os.cpu_count() or 1)))
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def masked_l1(pred, y, mask):
    """Mean |pred - y| over unmasked targets (masked entries contribute nothing)."""
    diff = (pred - y).abs() * mask
    return diff.sum() / mask.sum().clamp(min=1.0)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_network` (defaults: the paper's network, 1000 epochs)."""

    hidden: tuple = PAPER_HIDDEN
    epochs: int = 1000
    learning_rate: float = 1e-3
    #: lambda of the lasso term lambda * sum |W|, chosen so that it is a few per cent of the
    #: L1 loss of a converged network (the paper does not give its value).
    l1_penalty: float = 1e-7
    batch_size: int = 256
    #: "cosine": the learning rate decays as a half cosine from ``learning_rate`` to 1 % of it
    #: over ``epochs`` (an L1 loss has gradients of constant size, so a fixed step keeps the
    #: weights rattling around the minimum); "none": constant (plain Adam as in the paper).
    lr_schedule: str = "cosine"
    #: stop after this many epochs without a better validation loss (None: never).
    patience: int | None = 200
    threads: int | None = None
    device: str = "cpu"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _schedule(opt, cfg: TrainConfig):
    import torch

    if cfg.lr_schedule not in LR_SCHEDULES:
        raise SupercooledError(f"unknown lr_schedule {cfg.lr_schedule!r}: cosine or none")
    if cfg.lr_schedule == "none":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs,
                                                      eta_min=0.01 * cfg.learning_rate)


def _tensors(rows: Design, scaler: Scaler, device):
    """(standardised x, y with NaN -> 0, mask) of ``rows`` as float32 tensors."""
    import torch

    def as_t(a):
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    return as_t(scaler.transform(rows.x)), as_t(np.nan_to_num(rows.y)), as_t(rows.mask)


def _epoch(net, opt, weights, data, order, cfg: TrainConfig) -> float:
    """One pass over the mini-batches in ``order``; the summed (unpenalised) loss of the rows."""
    x, y, m = data
    total = 0.0
    for start in range(0, len(x), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        opt.zero_grad()
        loss = masked_l1(net(x[idx]), y[idx], m[idx])
        penalty = cfg.l1_penalty * sum(w.abs().sum() for w in weights)
        (loss + penalty).backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total


def train_network(train: Design, validation: Design | None, scaler: Scaler, *, seed: int = 0,
                  config: TrainConfig | None = None, progress: bool = True, desc: str = "MLP"):
    """Train one network; return (network in eval mode on the CPU, history dict).

    Loss per mini-batch: masked mean |F_pred - F_sim| + lambda sum |W| (weights, not biases).
    After each epoch the validation loss (masked L1 on the validation states) is recorded; the
    weights of the best validation epoch are kept (early stopping with ``config.patience``).
    Without validation rows the training loss takes its place. Everything random (initial
    weights, batch order) derives from ``seed``.
    """
    import torch

    cfg = config or TrainConfig()
    if len(train.x) == 0:
        raise SupercooledError("no training rows: every training state is empty")
    device = torch.device(cfg.device)
    with deterministic(cfg.device, cfg.threads):
        torch.manual_seed(seed)
        net = build_network(cfg.hidden).to(device)
        data = _tensors(train, scaler, device)
        has_val = validation is not None and len(validation.x) > 0
        xv, yv, mv = _tensors(validation, scaler, device) if has_val else (None, None, None)
        weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
        schedule = _schedule(opt, cfg)
        gen = torch.Generator().manual_seed(seed)
        n_rows = len(data[0])
        history = {"epoch": [], "loss": [], "val_loss": []}
        best, best_state, since = math.inf, None, 0
        bar = _progress(range(cfg.epochs), progress, desc)
        for epoch in bar:
            net.train()
            order = torch.randperm(n_rows, generator=gen).to(device)
            loss = _epoch(net, opt, weights, data, order, cfg) / n_rows
            if schedule is not None:
                schedule.step()
            net.eval()
            with torch.no_grad():
                val = float(masked_l1(net(xv), yv, mv)) if has_val else loss
            history["epoch"].append(epoch + 1)
            history["loss"].append(loss)
            history["val_loss"].append(val if has_val else float("nan"))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss:.4f}", val=f"{val:.4f}")
            if val < best:
                best, since = val, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                since += 1
                if cfg.patience is not None and since > cfg.patience:
                    break
        if best_state is None:  # the loss was NaN (or inf) from the first epoch on
            raise SupercooledError(
                f"training diverged: the {'validation ' if has_val else ''}loss was not finite in"
                f" any of {len(history['epoch'])} epochs (learning rate {cfg.learning_rate:g});"
                " lower the learning rate or check the library for non-finite values")
        net.load_state_dict(best_state)
        history["best_epoch"] = int(history["epoch"][int(np.nanargmin(
            history["val_loss"] if has_val else history["loss"]))])
    return net.cpu().eval(), history


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="epoch", leave=False)
