"""Multi-component mode-coupling theory (MCT) on the k grid of the conventions page
(book/conventions.md), from arrays only: :mod:`~supercooled.mct.statics` turns S_ab(k) into
the direct correlation functions (Ornstein–Zernike), the frequency matrix Omega^2
(:func:`frequency_matrix`, the project's one definition) and an :class:`MCTSystem`, and
provides Percus–Yevick hard spheres for validation; :mod:`~supercooled.mct.kernels` evaluates
the memory kernels (numba); :mod:`~supercooled.mct.arrest` finds the long-time limits,
critical points, the exponent parameter and T_mct of a series S(k; T); and
:mod:`~supercooled.mct.dynamics` solves the collective and tagged equations of motion and
reads them at k_p. Nothing here reads the library or files: the T_mct table, its cache in
``data/mct`` and the MCT F_s of a library state are :mod:`supercooled.mct_table`.
"""

from supercooled.mct.arrest import (
    HARD_SPHERE_PACKING_FRACTION_C,
    CriticalPoint,
    CriticalTemperature,
    NonErgodicity,
    critical_temperature_from_series,
    exponent_parameter,
    find_critical_point,
    hard_sphere_critical_point,
    nonergodicity_parameters,
    tagged_nonergodicity,
)
from supercooled.mct.dynamics import (
    MCTAtPeak,
    MCTSolution,
    mct_at_peak,
    mct_memory_at_kp,
    solve_mct,
)
from supercooled.mct.statics import (
    MCTSystem,
    binary_hard_sphere_system,
    frequency_matrix,
    hard_sphere_system,
    ka_system,
)

__all__ = [
    "HARD_SPHERE_PACKING_FRACTION_C", "CriticalPoint", "CriticalTemperature", "MCTAtPeak",
    "MCTSolution", "MCTSystem", "NonErgodicity", "binary_hard_sphere_system",
    "critical_temperature_from_series", "exponent_parameter", "find_critical_point",
    "frequency_matrix", "hard_sphere_critical_point", "hard_sphere_system", "ka_system",
    "mct_at_peak", "mct_memory_at_kp", "nonergodicity_parameters", "solve_mct",
    "tagged_nonergodicity",
]
