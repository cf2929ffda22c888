"""The default architecture: a network whose output is a valid correlator for any weights.

The paper's network maps (S(k), T, rho, interaction, log t) to F_s at one t and nothing
stops it from giving phi_s(0) != 1, phi_s < 0 or a curve that rises again. Here the network
sees the *state* only and returns the whole curve in reduced time

    t~ = t rho^(1/3) (T / m)^(1/2)            (m = 1, the conventions page)

(the time a particle at thermal speed needs to cross the mean spacing rho^(-1/3)). Its
outputs o_{a,j} on the fixed grid t~_0 < ... < t~_{n-1} (:data:`REDUCED_TIME_GRID`) are
turned into non-negative increments of g_a = -ln phi_s^a,

    g_a(t~_j) = sum_{i <= j} softplus(o_{a,i}),

and between grid points g_a is interpolated linearly in ln t~; below t~_0 it is ballistic,
g_a(t~) = g_a(t~_0) (t~ / t~_0)^2 (free flight: -ln phi_s = k^2 T t^2 / 2m); above the last
point it continues with the last segment's (non-negative) slope. Then

    phi_s^a(t) = exp(-g_a(t~)),     F_s^aa(k_p, t) = phi_s^a(t) S_aa(k_p)  (eq. 1),

so phi_s(0) = 1, 0 < phi_s <= 1 and phi_s is non-increasing in t whatever the weights. The
network's input is S_AA, S_AB, S_BB on the k grid, rho and the interaction label, not T: at
fixed structure the curve in reduced time is fixed, and tau_alpha scales exactly as
T^(-1/2) (kinematics; at fixed S(k), tau_alpha(1.25 T) = 1.25^(-1/2) tau_alpha(T) = 0.894
tau_alpha(T)). The temperature dependence of the slow dynamics must come from S(k), which is
the premise of the paper.
"""

from __future__ import annotations

import numpy as np

from supercooled.grids import K_GRID

#: Reduced-time grid of the network's output, 10 points per decade, 1e-3 ... 1e5 (the library
#: samples t~ = 0.0027 ... 1.6e4).
REDUCED_TIME_GRID = 10.0 ** np.arange(-3.0, 5.0001, 0.1)
#: Columns of the 303 state features (S_AA, S_AB, S_BB, T, rho, interaction) the network sees:
#: all but T (index 300).
INPUT_COLUMNS = np.r_[np.arange(3 * len(K_GRID)), 3 * len(K_GRID) + 1, 3 * len(K_GRID) + 2]
T_COLUMN, RHO_COLUMN = 3 * len(K_GRID), 3 * len(K_GRID) + 1
#: Hidden layers of the default correlator network (one state is one training row, ~100 rows).
DEFAULT_HIDDEN = (512, 256, 256)
#: Bias of the output layer at initialisation: softplus(-4) = 0.018 per grid step, so that an
#: untrained network starts from a slowly decaying curve rather than phi ~ 0 at t~ = 1.
OUTPUT_BIAS = -4.0


def reduced_time(t, temperature, density):
    """t~ = t rho^(1/3) T^(1/2) (m = 1): broadcasts (n_state, 1) state values against t."""
    return np.asarray(t, float) * np.asarray(density, float) ** (1 / 3) * np.sqrt(
        np.asarray(temperature, float))


def interpolation_weights(t_reduced, grid=REDUCED_TIME_GRID) -> np.ndarray:
    """(..., n_grid) weights w with g(t~) = w . g_grid (see the module docstring).

    Linear in ln t~ between grid points (two non-negative weights summing to 1), ballistic
    (t~ / t~_0)^2 on the first point below the grid, and the last segment extended above it
    (weights 1 + a and -a on the last two points, a >= 0, so g stays non-decreasing because the
    increments are). Non-finite t~ gives zero weights.
    """
    tr = np.asarray(t_reduced, float)
    lg, x = np.log(grid), np.log(np.where(np.isfinite(tr) & (tr > 0), tr, grid[0]))
    w = np.zeros(tr.shape + (len(grid),))
    j = np.clip(np.searchsorted(lg, x) - 1, 0, len(grid) - 2)
    frac = (x - lg[j]) / (lg[j + 1] - lg[j])
    below = tr < grid[0]
    frac = np.where(below, 0.0, frac)
    np.put_along_axis(w, j[..., None], (1.0 - frac)[..., None], axis=-1)
    np.put_along_axis(w, (j + 1)[..., None], frac[..., None], axis=-1)
    first = np.where(below, (np.maximum(tr, 0.0) / grid[0]) ** 2, w[..., 0])
    w[..., 0] = first
    w[~np.isfinite(tr)] = 0.0
    return w


def build_correlator_network(hidden=DEFAULT_HIDDEN, n_in: int = len(INPUT_COLUMNS),
                             n_grid: int = len(REDUCED_TIME_GRID)):
    """MLP n_in -> hidden... -> 2 n_grid (ReLU), returning g_a on the grid: (n, 2, n_grid)."""
    import torch

    class CorrelatorNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layers, width = [], n_in
            for h in hidden:
                layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
                width = int(h)
            out = torch.nn.Linear(width, 2 * n_grid)
            torch.nn.init.constant_(out.bias, OUTPUT_BIAS)
            layers.append(out)
            self.body = torch.nn.Sequential(*layers)

        def forward(self, z):
            steps = torch.nn.functional.softplus(self.body(z)).reshape(-1, 2, n_grid)
            return torch.cumsum(steps, dim=-1)

    return CorrelatorNet()


def phi_from_grid(g, weights):
    """phi_s (n, n_time, 2) = exp(-w . g) from g (n, 2, n_grid) and weights (n, n_time, n_grid);
    works on torch tensors and NumPy arrays."""
    if isinstance(g, np.ndarray):
        return np.exp(-np.einsum("nag,ntg->nta", g, weights))
    import torch

    return torch.exp(-torch.einsum("nag,ntg->nta", g, weights))


def state_weights(state_feats, times) -> np.ndarray:
    """(n_state, n_time, n_grid) interpolation weights of each state's t~ = t rho^(1/3) T^(1/2),
    T and rho read from the 303 state features."""
    f = np.atleast_2d(state_feats)
    tr = reduced_time(np.asarray(times, float)[None, :], f[:, T_COLUMN, None], f[:, RHO_COLUMN, None])
    return interpolation_weights(tr)
