"""The networks and the package's one training loop.

Two architectures (``TrainConfig.architecture``):

* ``"physics"`` (default): :mod:`supercooled.ml.physics`, one row per *state*, the whole
  phi_s^a(t) as exp(-g) with non-negative increments of g on a reduced-time grid, so that
  phi_s(0) = 1, 0 < phi_s <= 1 and phi_s non-increasing by construction, and tau_alpha
  proportional to T^(-1/2) at fixed S(k). Loss: mean |phi_pred - phi_sim| over the sampled
  (state, time, species), each species on its own scale.
* ``"paper"``: Ciarella et al.'s 304 -> 500 -> 400 -> 400 -> 300 -> 200 -> 2, one row per
  (state, time), output F_s^aa(k_p, t); loss: mean |F_pred - F_sim|.

Both are trained with the L1 loss over the unmasked targets plus an L1 (lasso) penalty
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
from supercooled.ml import physics
from supercooled.ml.features import N_FEATURES, Design, Scaler

#: Hidden layer widths of the paper's network.
PAPER_HIDDEN = (500, 400, 400, 300, 200)
LR_SCHEDULES = ("cosine", "none")
ARCHITECTURES = ("physics", "paper")
#: Architecture defaults: hidden widths and mini-batch size (rows: (state, time) pairs for
#: "paper", states for "physics").
DEFAULT_HIDDEN = {"physics": physics.DEFAULT_HIDDEN, "paper": PAPER_HIDDEN}
DEFAULT_BATCH = {"physics": 8, "paper": 256}
#: lambda of the lasso term lambda * sum |W|, chosen so that it is a few per cent of the L1
#: loss of a converged network (the paper does not give its value); on the CPU library split
#: 0, (512, 256, 256) with 1e-6 gave R^2_AA 0.989 against 0.973 for (256, 256, 128) with 1e-7.
DEFAULT_L1 = {"physics": 1e-6, "paper": 1e-7}


def check_architecture(name: str) -> str:
    if name not in ARCHITECTURES:
        raise SupercooledError(f"unknown architecture {name!r}: choose from "
                               f"{', '.join(ARCHITECTURES)}")
    return name


def build(architecture: str, hidden):
    """A fresh network of ``architecture`` with the given hidden widths."""
    if check_architecture(architecture) == "physics":
        return physics.build_correlator_network(hidden)
    return build_network(hidden)


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
    """Hyper-parameters of :func:`train_network` (``hidden`` and ``batch_size`` None: the
    architecture's defaults, :data:`DEFAULT_HIDDEN`, :data:`DEFAULT_BATCH`)."""

    hidden: tuple | None = None
    epochs: int = 1000
    learning_rate: float = 1e-3
    #: lambda of the lasso term (None: :data:`DEFAULT_L1` of the architecture).
    l1_penalty: float | None = None
    batch_size: int | None = None
    #: "cosine": the learning rate decays as a half cosine from ``learning_rate`` to 1 % of it
    #: over ``epochs`` (an L1 loss has gradients of constant size, so a fixed step keeps the
    #: weights rattling around the minimum); "none": constant (plain Adam as in the paper).
    lr_schedule: str = "cosine"
    #: stop after this many epochs without a better validation loss (None: never).
    patience: int | None = 200
    threads: int | None = None
    device: str = "cpu"
    architecture: str = "physics"

    def __post_init__(self):
        check_architecture(self.architecture)
        if self.hidden is None:
            self.hidden = DEFAULT_HIDDEN[self.architecture]
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.batch_size is None:
            self.batch_size = DEFAULT_BATCH[self.architecture]
        if self.l1_penalty is None:
            self.l1_penalty = DEFAULT_L1[self.architecture]

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


def _tensors(rows, scaler: Scaler, device):
    """(inputs..., y with NaN -> 0, mask) of ``rows`` as float32 tensors: inputs are the
    standardised x of a :class:`~supercooled.ml.features.Design`, or the standardised state
    features and interpolation weights of a :class:`~supercooled.ml.features.StateDesign`."""
    import torch

    def as_t(a):
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    inputs = (as_t(scaler.transform(rows.x)),)
    if hasattr(rows, "weights"):
        inputs += (as_t(rows.weights),)
    return (*inputs, as_t(np.nan_to_num(rows.y)), as_t(rows.mask))


def forward(net, *inputs):
    """Prediction of ``net`` on tensor inputs: F rows (paper) or phi (n, n_time, 2) (physics)."""
    if len(inputs) == 2:
        return physics.phi_from_grid(net(inputs[0]), inputs[1])
    return net(inputs[0])


def _epoch(net, opt, weights, data, order, cfg: TrainConfig) -> float:
    """One pass over the mini-batches in ``order``; the summed (unpenalised) loss of the rows."""
    *inputs, y, m = data
    total = 0.0
    for start in range(0, len(y), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        opt.zero_grad()
        loss = masked_l1(forward(net, *(a[idx] for a in inputs)), y[idx], m[idx])
        penalty = cfg.l1_penalty * sum(w.abs().sum() for w in weights)
        (loss + penalty).backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total


def train_network(train: Design, validation: Design | None, scaler: Scaler, *, seed: int = 0,
                  config: TrainConfig | None = None, progress: bool = True, desc: str = "MLP"):
    """Train one network; return (network in eval mode on the CPU, history dict).

    ``train``, ``validation``: :class:`~supercooled.ml.features.Design` rows for the paper's
    architecture, :class:`~supercooled.ml.features.StateDesign` for the physics one.
    Loss per mini-batch: masked mean |pred - sim| (F for "paper", phi_s for "physics")
    + lambda sum |W| (weights, not biases).
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
        net = build(cfg.architecture, cfg.hidden).to(device)
        data = _tensors(train, scaler, device)
        has_val = validation is not None and len(validation.x) > 0
        *val_in, yv, mv = _tensors(validation, scaler, device) if has_val else (None, None, None)
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
                val = float(masked_l1(forward(net, *val_in), yv, mv)) if has_val else loss
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
