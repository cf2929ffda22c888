"""The fixed wave-number and time grids that every stored quantity and MCT use.

k grid (the conventions page, book/conventions.md): N_k = 100 points k_i = (i - 1/2) dk, i = 1 ... 100, dk = 0.4 sigma_AA^-1,
i.e. 0.2 ... 39.8. It is the midpoint grid on which the Bengtzelius-style MCT integrals are
exact sums, and the grid of the MLP's 300 structure features.

Time grid: log-spaced with 10 points per decade, t_j = 0.005 tau * 10^(j / 10),
j = 0 ... 80, i.e. 0.005 ... 5e5 tau. Correlation functions of every state are stored on this
grid; points beyond what a run sampled are NaN.
"""

import numpy as np

DK = 0.4
N_K = 100
K_GRID = (np.arange(1, N_K + 1) - 0.5) * DK

T_MIN = 0.005
POINTS_PER_DECADE = 10
N_TIME = 81
TIME_GRID = T_MIN * 10.0 ** (np.arange(N_TIME) / POINTS_PER_DECADE)
