"""The Kob–Andersen binary mixture, its Lennard-Jones and WCA variants, and state points.

Units are Lennard-Jones units of the A–A interaction: length sigma_AA, energy eps_AA, mass m
(all particles have the same mass), time tau = sqrt(m sigma_AA^2 / eps_AA), k_B = 1.

Both interactions use the Kob–Andersen parameters (Kob & Andersen 1995)

    eps_AA = 1.0,  eps_AB = 1.5,  eps_BB = 0.5
    sigma_AA = 1.0, sigma_AB = 0.8, sigma_BB = 0.88

and the 12-6 potential V(r) = 4 eps [(sigma/r)^12 - (sigma/r)^6], truncated at r_c and
shifted so that it is zero there (not shifted-force):

    V_ab(r) = V(r) - V(r_c)  for r < r_c,  0 otherwise.

LJ uses r_c = 2.5 sigma_ab. WCA (Weeks, Chandler & Andersen 1971) uses r_c = 2^(1/6) sigma_ab,
the minimum of V, so only the repulsive part remains and the force is continuous at r_c.
The mixture is 80:20 A:B by number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from supercooled.errors import SupercooledError

INTERACTIONS = ("LJ", "WCA")
SPECIES = ("A", "B")
PAIRS = ("AA", "AB", "BB")
FRACTION_A = 0.8
MASS = 1.0
EPSILON = {"AA": 1.0, "AB": 1.5, "BB": 0.5}
SIGMA = {"AA": 1.0, "AB": 0.8, "BB": 0.88}
CUTOFF_FACTOR = {"LJ": 2.5, "WCA": 2.0 ** (1.0 / 6.0)}
DEFAULT_BOX_LENGTH = 10.0
#: The densities the book studies (the paper's range 1.2 ... 1.8).
DENSITIES = (1.2, 1.4, 1.6, 1.8)
#: Highest number density a state may have: far above the book's 1.8 (the mixture is a glass
#: long before), and far below where the MD engines fail (LAMMPS' neighbour list overflows
#: near rho = 20 with the LJ cutoff, and the random insertion cannot be relaxed long before).
MAX_DENSITY = 5.0
#: Fewest particles of a state: the crystallinity check of every run needs each particle's 12
#: nearest neighbours (N > 12), and 80:20 needs a multiple of 5.
MIN_PARTICLES = 15


def normalize_interaction(interaction: str) -> str:
    """Return the canonical name ("LJ" or "WCA") or raise a one-line error."""
    name = str(interaction).strip().upper()
    if name not in INTERACTIONS:
        raise SupercooledError(
            f"unknown interaction {interaction!r}: choose one of {', '.join(INTERACTIONS)}"
        )
    return name


def normalize_pair(pair: str) -> str:
    """Return "AA", "AB" or "BB" ("BA" is the same pair as "AB")."""
    name = str(pair).strip().upper()
    if name == "BA":
        name = "AB"
    if name not in PAIRS:
        raise SupercooledError(f"unknown species pair {pair!r}: choose one of {', '.join(PAIRS)}")
    return name


@dataclass(frozen=True)
class PairPotential:
    """A 12-6 Lennard-Jones pair potential truncated and shifted to zero at ``cutoff``."""

    epsilon: float
    sigma: float
    cutoff: float

    def _bare(self, r):
        sr6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (sr6 * sr6 - sr6)

    @property
    def shift(self) -> float:
        """V(r_c) of the untruncated potential, subtracted so that V_ab(r_c) = 0."""
        return float(self._bare(self.cutoff))

    def energy(self, r):
        """V_ab(r) = 4 eps [(s/r)^12 - (s/r)^6] - V(r_c) for r < r_c, else 0."""
        r = np.asarray(r, dtype=float)
        inside = r < self.cutoff
        safe = np.where(inside, r, self.cutoff)
        return np.where(inside, self._bare(safe) - self.shift, 0.0)

    def force(self, r):
        """Radial force F(r) = -dV/dr = 24 eps [2 (s/r)^12 - (s/r)^6] / r for r < r_c, else 0.

        Positive values are repulsive. The shift does not change the force.
        """
        r = np.asarray(r, dtype=float)
        inside = r < self.cutoff
        safe = np.where(inside, r, self.cutoff)
        sr6 = (self.sigma / safe) ** 6
        return np.where(inside, 24.0 * self.epsilon * (2.0 * sr6 * sr6 - sr6) / safe, 0.0)


def pair_potential(interaction: str, pair: str) -> PairPotential:
    """The shifted pair potential of one species pair for "LJ" or "WCA"."""
    interaction = normalize_interaction(interaction)
    pair = normalize_pair(pair)
    sigma = SIGMA[pair]
    return PairPotential(EPSILON[pair], sigma, CUTOFF_FACTOR[interaction] * sigma)


def composition(n_particles: int) -> tuple[int, int]:
    """(N_A, N_B) of an exactly 80:20 mixture; raise if 0.8 N is not an integer."""
    try:
        whole = int(n_particles) == n_particles
    except (TypeError, ValueError, OverflowError):  # NaN, infinity, not a number
        whole = False
    if isinstance(n_particles, bool) or not whole or n_particles <= 0:
        raise SupercooledError(f"particle number must be a positive integer, got {n_particles!r}")
    n_particles = int(n_particles)
    if n_particles % 5 != 0:
        raise SupercooledError(
            f"N = {n_particles} cannot be split exactly 80:20 into A and B "
            f"(N must be a multiple of 5; nearest: {5 * max(1, round(n_particles / 5))})"
        )
    n_b = n_particles // 5
    return n_particles - n_b, n_b


def _positive_finite(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SupercooledError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0.0:
        raise SupercooledError(f"{name} must be positive and finite, got {value}")
    return value


@dataclass(frozen=True)
class StatePoint:
    """One thermodynamic state of the mixture in a cubic periodic box.

    Give the interaction, the number density rho = N / L^3 and the temperature. The particle
    number defaults to N = round(rho L^3) with L = 10 sigma_AA (1200 ... 1800 for
    rho = 1.2 ... 1.8); the box side is then L = (N / rho)^(1/3). N must split exactly 80:20.
    """

    interaction: str
    density: float
    temperature: float
    n_particles: int | None = None
    box_length: float = field(init=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "interaction", normalize_interaction(self.interaction))
        set_(self, "density", _positive_finite("density", self.density))
        set_(self, "temperature", _positive_finite("temperature", self.temperature))
        n = self.n_particles
        if n is None:
            n = round(self.density * DEFAULT_BOX_LENGTH**3)
        composition(n)  # validates
        set_(self, "n_particles", int(n))
        set_(self, "box_length", (self.n_particles / self.density) ** (1.0 / 3.0))
        self._check_fit()

    def _check_fit(self) -> None:
        """A state the MD can run: a density below MAX_DENSITY, enough particles, and a box
        longer than the cutoff (or a particle would interact with its own periodic image)."""
        if self.density > MAX_DENSITY:
            raise SupercooledError(f"density {self.density:g} is above {MAX_DENSITY:g} "
                                   "sigma_AA^-3, far beyond any liquid state of the mixture")
        if self.n_particles < MIN_PARTICLES:
            raise SupercooledError(f"N = {self.n_particles} particles are too few: a run needs "
                                   f"at least {MIN_PARTICLES} (each particle's 12 nearest "
                                   "neighbours are examined for crystallisation)")
        cutoff = CUTOFF_FACTOR[self.interaction] * max(SIGMA.values())
        if self.box_length <= cutoff:
            smallest = 5 * math.ceil(self.density * cutoff**3 / 5 + 1e-9)
            raise SupercooledError(
                f"N = {self.n_particles} at rho = {self.density:g} gives a box of side "
                f"{self.box_length:.3g}, not longer than the {self.interaction} cutoff "
                f"{cutoff:.3g}: use at least N = {smallest}")

    @property
    def n_a(self) -> int:
        return composition(self.n_particles)[0]

    @property
    def n_b(self) -> int:
        return composition(self.n_particles)[1]

    @property
    def volume(self) -> float:
        return self.box_length**3

    @property
    def label(self) -> str:
        """A file-name-safe identifier, e.g. ``LJ_rho1.200_T0.4500``."""
        return f"{self.interaction}_rho{self.density:.3f}_T{self.temperature:.4f}"

    def potentials(self) -> dict[str, PairPotential]:
        return {pair: pair_potential(self.interaction, pair) for pair in PAIRS}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StatePoint:
        return cls(
            interaction=data["interaction"],
            density=data["density"],
            temperature=data["temperature"],
            n_particles=data.get("n_particles"),
        )


def density_scaled_temperature(t_ref: float, density: float, *, rho_ref: float = 1.2,
                               gamma: float = 5.0) -> float:
    """T(rho) = T_ref (rho / rho_ref)^gamma: isomorphs of the KA mixture to a good approximation.

    Dense Kob–Andersen liquids show density scaling: the dynamics depend on rho^gamma / T
    with gamma close to 5 (Coslovich & Roland 2008), so grids at higher density are placed by
    this rule.
    """
    return _positive_finite("t_ref", t_ref) * (_positive_finite("density", density) / rho_ref) ** gamma
