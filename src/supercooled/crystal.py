"""Crystallisation check: is a configuration partly crystalline?

Deeply supercooled Kob–Andersen mixtures can crystallise (A-rich fcc domains) in long runs,
which would silently spoil the slow dynamics. Every run is checked with the solid-bond
order parameter of ten Wolde, Ruiz-Montero & Frenkel (1995), computed by freud:

- each particle i gets q_6m(i) = (1/12) sum_j Y_6m(r_ij) over its 12 nearest neighbours;
- a bond (i, j) is solid-like when d_6(i, j) = Re sum_m q_6m(i) q_6m(j)* / (|q_6(i)| |q_6(j)|)
  exceeds 0.7 (d_6 = 1 in a perfect crystal, small and of either sign in a liquid);
- a particle is solid-like when at least 7 of its 12 bonds are solid-like.

The configuration counts as crystallised when more than :data:`CRYSTAL_FRACTION` of all
particles are solid-like. In the liquid and in the supercooled liquid the solid-like
fraction is of order 1e-3 (orientational order of liquids is short-lived and not shared
between neighbours); in fcc, hcp or bcc crystals it is 1, and in a crystallite of a few
hundred particles it is a few tenths.
"""

from __future__ import annotations

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.trajectory import wrap_positions

NUM_NEIGHBORS = 12
Q_THRESHOLD = 0.7
SOLID_THRESHOLD = 7
#: solid-like fraction above which a configuration counts as crystallised
CRYSTAL_FRACTION = 0.05


def _system(positions, box_length):
    import freud

    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) <= NUM_NEIGHBORS:
        raise SupercooledError(
            f"positions must be an (N, 3) array with N > {NUM_NEIGHBORS}, got {positions.shape}")
    try:
        box_length = float(box_length)
    except (TypeError, ValueError):
        raise SupercooledError(f"box length must be a number, got {box_length!r}") from None
    if not np.isfinite(positions).all() or not (np.isfinite(box_length) and box_length > 0):
        raise SupercooledError("positions must be finite and the box length positive and finite")
    box = freud.box.Box.cube(box_length)
    # freud wants float32 coordinates inside [-L/2, L/2); accept unwrapped input. Wrapping in
    # float64 and then rounding to float32 can land on +L/2: wrap_positions moves those to -L/2
    wrapped, _ = wrap_positions(positions, box_length)
    return box, wrapped


def solid_like(positions, box_length: float) -> np.ndarray:
    """Boolean array: which particles are solid-like (>= 7 solid bonds of 12, d_6 > 0.7)."""
    import freud

    box, points = _system(positions, box_length)
    order = freud.order.SolidLiquid(l=6, q_threshold=Q_THRESHOLD, solid_threshold=SOLID_THRESHOLD)
    order.compute((box, points), neighbors={"num_neighbors": NUM_NEIGHBORS, "exclude_ii": True})
    return np.asarray(order.num_connections) >= SOLID_THRESHOLD


def solid_fraction(positions, box_length: float) -> float:
    """Fraction of particles that are solid-like (see the module docstring)."""
    return float(np.mean(solid_like(positions, box_length)))


def is_crystallized(positions, box_length: float, *, threshold: float = CRYSTAL_FRACTION) -> bool:
    """True when the solid-like fraction exceeds ``threshold`` (default 0.05)."""
    return solid_fraction(positions, box_length) > threshold


def fcc_positions(cells: int, lattice_constant: float) -> np.ndarray:
    """Sites of a cubic fcc crystal of ``cells``^3 unit cells (4 cells^3 sites), origin at 0.

    Density 4 / a^3; used to test :func:`is_crystallized` and to show a crystal in the book.
    """
    if int(cells) != cells or cells < 1:
        raise SupercooledError(f"cells must be a positive integer, got {cells!r}")
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.stack(np.meshgrid(*[np.arange(int(cells))] * 3, indexing="ij"), -1).reshape(-1, 3)
    return ((grid[:, None, :] + basis[None]).reshape(-1, 3) * float(lattice_constant))
