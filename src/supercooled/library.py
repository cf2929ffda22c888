"""The state-point library: one netCDF file per state, loaded as one xarray Dataset.

Schema of one state file (the conventions page, book/conventions.md; names are part of the
interface):

    k (k)                      the 100-point K_GRID, sigma_AA^-1
    time (time)                the log-spaced TIME_GRID, tau
    S (pair, k)                partial structure factors, pair = AA, AB, BB (S_aa -> x_a)
    phi_s (species, time)      self ISF at k_p, species = A, B; NaN beyond the sampled times
    msd (species, time)        mean squared displacement, sigma_AA^2
    k_p, tau_alpha             peak of S_AA; 1/e time of phi_s^A (NaN if not reached)
    attributes                 interaction, density, temperature (measured), temperature_target,
                               n_particles, seed, dt, engine, engine_version,
                               equilibration_time, production_time, energy_drift,
                               crystallized (0/1), equilibrated (0/1), created

Extra variables written by :mod:`supercooled.measure`: ``D`` (species), the diffusion
coefficient; ``phi_s_first_half`` / ``phi_s_second_half`` (species, time), phi_s from the
first and the second half of the production run alone; ``ageing_check``, the largest
|difference| between the two where both are defined (a no-ageing test for equilibrium).

Files are written atomically (temporary file in the same folder, then ``os.replace``), so a
campaign can be killed at any moment and a reader never sees half a file.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from supercooled.atomic import replacing
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.paths import library_path
from supercooled.systems import INTERACTIONS, PAIRS, SPECIES, normalize_interaction

REQUIRED_VARIABLES = {
    "S": ("pair", "k"),
    "phi_s": ("species", "time"),
    "msd": ("species", "time"),
    "k_p": (),
    "tau_alpha": (),
}
REQUIRED_ATTRIBUTES = (
    "interaction", "density", "temperature", "temperature_target", "n_particles", "seed", "dt",
    "engine", "engine_version", "equilibration_time", "production_time", "energy_drift",
    "crystallized", "equilibrated", "created",
)
#: Attributes that become coordinates along ``state`` in :func:`load_library`.
STATE_COORDINATES = REQUIRED_ATTRIBUTES


def _engine() -> str:
    """xarray engine to write with: h5netcdf (netCDF4/HDF5) when h5py is installed, else scipy.

    h5netcdf needs h5py; without it the scipy backend writes netCDF3 (64-bit offset), which
    holds this schema equally well. Reading detects the format of each file by itself.
    """
    try:
        import h5py  # noqa: F401
    except ImportError:
        return "scipy"
    return "h5netcdf"


class LibraryError(SupercooledError):
    """A state file is corrupt, incomplete or does not follow the schema."""


def interaction_label(interaction: str) -> str:
    """"LJ" / "WCA" in canonical case; another name kept as is if it is file-name safe."""
    name = str(interaction).strip()
    if name.upper() in INTERACTIONS:
        return name.upper()
    if not re.fullmatch(r"[A-Za-z0-9.+-]+", name):
        raise SupercooledError(f"interaction name {interaction!r} cannot be used in a file name")
    return name


def state_label(interaction: str, density: float, temperature_target: float,
                equilibrated: bool = True) -> str:
    """``LJ_rho1.200_T0.4500`` (as StatePoint.label), with ``_aged`` for a non-equilibrated run."""
    label = f"{interaction_label(interaction)}_rho{float(density):.3f}_T{float(temperature_target):.4f}"
    return label if equilibrated else label + "_aged"


def state_filename(interaction: str, density: float, temperature_target: float,
                   equilibrated: bool = True) -> str:
    """File name of a state in the library: ``state_label(...) + ".nc"``."""
    return state_label(interaction, density, temperature_target, equilibrated) + ".nc"


def validate_state(ds: xr.Dataset, name: str = "state") -> None:
    """Raise :class:`LibraryError` naming ``name`` unless ``ds`` follows the schema."""
    problems = []
    for variable, dims in REQUIRED_VARIABLES.items():
        if variable not in ds:
            problems.append(f"missing variable {variable!r}")
        elif tuple(ds[variable].dims) != dims:
            problems.append(f"{variable!r} has dims {ds[variable].dims}, expected {dims}")
    for coordinate, expected in (("k", K_GRID), ("time", TIME_GRID)):
        if coordinate not in ds.coords or ds.sizes.get(coordinate) != expected.size:
            problems.append(f"coordinate {coordinate!r} missing or not of length {expected.size}")
        elif not np.allclose(ds[coordinate].values, expected, rtol=1e-9):
            problems.append(f"coordinate {coordinate!r} differs from the standard grid")
    if "pair" in ds.coords and list(ds["pair"].values) != list(PAIRS):
        problems.append(f"pair coordinate must be {list(PAIRS)}")
    if "species" in ds.coords and list(ds["species"].values) != list(SPECIES):
        problems.append(f"species coordinate must be {list(SPECIES)}")
    missing = [a for a in REQUIRED_ATTRIBUTES if a not in ds.attrs]
    if missing:
        problems.append(f"missing attributes {', '.join(missing)}")
    if "S" in ds and not problems and not np.isfinite(ds["S"].values).all():
        problems.append("S contains NaN")
    if not missing:
        problems += _attribute_problems(ds.attrs)
    if problems:
        raise LibraryError(f"corrupt or incomplete state file {name}: {'; '.join(problems)}")


#: attributes that must be positive finite numbers (a state at T <= 0 is no state)
POSITIVE_ATTRIBUTES = ("density", "temperature", "temperature_target", "n_particles")


def _attribute_problems(attrs: dict) -> list[str]:
    """What is wrong with the values of a state file's attributes."""
    problems = []
    for name in POSITIVE_ATTRIBUTES:
        try:
            value = float(attrs[name])
        except (TypeError, ValueError):
            problems.append(f"attribute {name} = {attrs[name]!r} is not a number")
            continue
        if not (np.isfinite(value) and value > 0):
            problems.append(f"attribute {name} = {attrs[name]!r} must be positive")
    for name in ("equilibrated", "crystallized"):
        if str(attrs[name]) not in ("0", "1", "True", "False"):
            problems.append(f"attribute {name} = {attrs[name]!r} must be 0 or 1")
    return problems


def _attribute_value(value, engine: str):
    """netCDF attributes hold numbers and strings: bools become 0/1, None becomes ''.

    netCDF3 (the scipy engine) has no 64-bit integers: an integer outside the int32 range
    (a large seed) is stored as a float64, exact below 2^53.
    """
    if isinstance(value, bool | np.bool_):
        return int(value)
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if engine == "scipy" and isinstance(value, int) and not -(2**31) <= value < 2**31:
        return float(value)
    return value


def write_state(ds: xr.Dataset, path) -> Path:
    """Validate ``ds`` and write it to ``path`` atomically (temp file + os.replace)."""
    path = Path(path)
    validate_state(ds, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = _engine()
    ds = ds.copy()
    ds.attrs = {key: _attribute_value(value, engine) for key, value in ds.attrs.items()}
    # a hidden temporary file, then a rename, with the mode of any new file of the user
    # (a library is shared: never 0600)
    with replacing(path) as temporary:
        ds.to_netcdf(temporary, engine=engine)
    return path


def read_state(path) -> xr.Dataset:
    """Load one state file into memory; raise :class:`LibraryError` naming it if it is bad."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such state file", str(path))
    try:
        with xr.open_dataset(path) as opened:
            ds = opened.load()
    except Exception as error:  # h5py/netCDF raise many types for a truncated file
        raise LibraryError(f"corrupt or incomplete state file {path}: {error}") from None
    validate_state(ds, str(path))
    return ds


def _empty_library() -> xr.Dataset:
    coords = {"k": K_GRID, "time": TIME_GRID, "pair": list(PAIRS), "species": list(SPECIES)}
    data = {
        "S": (("state", "pair", "k"), np.empty((0, len(PAIRS), K_GRID.size))),
        "phi_s": (("state", "species", "time"), np.empty((0, len(SPECIES), TIME_GRID.size))),
        "msd": (("state", "species", "time"), np.empty((0, len(SPECIES), TIME_GRID.size))),
        "k_p": (("state",), np.empty(0)),
        "tau_alpha": (("state",), np.empty(0)),
    }
    ds = xr.Dataset(data, coords=coords)
    for name in STATE_COORDINATES + ("label", "file"):
        ds = ds.assign_coords({name: ("state", np.empty(0, dtype=object))})
    return ds


def _as_state(ds: xr.Dataset, path: Path) -> xr.Dataset:
    coords = {name: ("state", [ds.attrs[name]]) for name in STATE_COORDINATES}
    coords["label"] = ("state", [path.stem])
    coords["file"] = ("state", [str(path)])
    state = ds.expand_dims("state").assign_coords(coords)
    state.attrs = {}
    return state


def _fill_missing_variables(states: list[xr.Dataset]) -> list[xr.Dataset]:
    """Give every state the union of variables (NaN where a file lacks an optional one)."""
    templates = {}
    for ds in states:
        for name, variable in ds.data_vars.items():
            templates.setdefault(name, variable)
    out = []
    for ds in states:
        missing = {name: xr.full_like(t, np.nan, dtype=float) for name, t in templates.items()
                   if name not in ds}
        out.append(ds.assign(missing) if missing else ds)
    return out


def load_library(path=None, *, skip_bad: bool = False, pattern: str = "*.nc") -> xr.Dataset:
    """Load every state file of a folder as one Dataset with a ``state`` dimension.

    Per-state attributes (interaction, density, temperature, temperature_target, equilibrated,
    crystallized, ...) become coordinates along ``state``, with ``label`` (file stem) and
    ``file``. A corrupt or incomplete file raises :class:`LibraryError` naming it, or with
    ``skip_bad=True`` is skipped with a warning. An empty (or missing) folder gives a Dataset
    with zero states.
    """
    folder = library_path() if path is None else Path(path)
    if folder.exists() and not folder.is_dir():
        raise SupercooledError(f"library path {folder} is not a folder")
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    states = []
    for file in files:
        try:
            states.append(_as_state(read_state(file), file))
        except LibraryError as error:
            if not skip_bad:
                raise
            warnings.warn(f"skipping {error}", stacklevel=2)
    if not states:
        return _empty_library()
    library = xr.concat(_fill_missing_variables(states), dim="state", combine_attrs="drop")
    return library.assign_coords(state=np.arange(library.sizes["state"]))


def _matches(values, wanted) -> np.ndarray:
    values = np.asarray(values)
    if isinstance(wanted, tuple) and len(wanted) == 2:
        low, high = wanted
        return (values.astype(float) >= low) & (values.astype(float) <= high)
    if isinstance(wanted, str):
        return np.array([str(v).upper() == wanted.upper() for v in values], dtype=bool)
    if isinstance(wanted, list | np.ndarray):
        return np.logical_or.reduce([_matches(values, w) for w in wanted]) if len(wanted) else \
            np.zeros(values.size, bool)
    return np.isclose(values.astype(float), float(wanted), rtol=1e-6, atol=1e-9)


def select(ds: xr.Dataset, interaction=None, density=None, temperature=None, **coordinates):
    """States matching every given criterion.

    ``temperature`` matches the *target* temperature (the campaign's grid value); use
    ``temperature_measured=`` for the measured one. Each criterion is a value (numbers match
    to a relative 1e-6), a list of values (any of them), or a (low, high) tuple (inclusive
    range). Other keywords filter any state coordinate, e.g. ``equilibrated=1``.
    """
    criteria = dict(coordinates)
    if interaction is not None:
        criteria["interaction"] = interaction
    if density is not None:
        criteria["density"] = density
    if temperature is not None:
        criteria["temperature_target"] = temperature
    if "temperature_measured" in criteria:
        criteria["temperature"] = criteria.pop("temperature_measured")
    mask = np.ones(ds.sizes.get("state", 0), dtype=bool)
    for name, wanted in criteria.items():
        if name not in ds.coords:
            raise SupercooledError(f"unknown state coordinate {name!r}")
        mask &= _matches(ds[name].values, wanted)
    return ds.isel(state=np.flatnonzero(mask))


#: In :func:`select_state`, states whose differences from the requested T agree to within
#: this fraction of T are at "the same" temperature (as are states with the same target T).
SAME_TEMPERATURE_RTOL = 1e-3


def select_state(library, interaction: str, density: float, temperature: float, *,
                 rtol: float = 0.02):
    """The library state of this interaction and density whose temperature is nearest T.

    T is compared with both the campaign's target temperature and the measured one (the
    smaller difference counts). The nearest state within ``rtol`` (relative) of T wins; an
    equilibrated state wins over an aged one only at the same temperature: the same target
    temperature as the nearest state, or a difference from T within
    :data:`SAME_TEMPERATURE_RTOL` of T of the nearest one. An aged glass nearer to T than
    every equilibrated state is chosen. Raises a one-line error when none lies within
    ``rtol``, listing what exists.
    """
    interaction = normalize_interaction(interaction)
    if library.sizes.get("state", 0) == 0:
        raise SupercooledError("the library is empty: run a campaign first")
    inter = np.char.upper(np.asarray(library["interaction"]).astype(str))
    dens = np.asarray(library["density"], dtype=float)
    temps = np.asarray(library["temperature"], dtype=float)
    target = np.asarray(library["temperature_target"], dtype=float) \
        if "temperature_target" in library.coords else temps
    equil = np.asarray(library["equilibrated"], dtype=float) if "equilibrated" in library.coords \
        else np.ones(temps.size)
    same = (inter == interaction) & np.isclose(dens, density, rtol=1e-3)
    if not same.any():
        raise SupercooledError(f"the library has no {interaction} state at density {density}")
    # distance in T of every state of this series (infinite for the other series)
    distance = np.where(same, np.minimum(np.abs(temps - temperature),
                                         np.abs(target - temperature)), np.inf)
    close = np.flatnonzero(distance <= rtol * temperature)
    if close.size == 0:
        have = ", ".join(f"{t:.4g}" for t in np.sort(target[same]))
        raise SupercooledError(f"no {interaction} state at rho = {density} near T = {temperature} "
                               f"(temperatures there: {have})")
    nearest = close[np.argmin(distance[close])]
    tied = close[(distance[close] <= distance[nearest] + SAME_TEMPERATURE_RTOL * temperature)
                 | np.isclose(target[close], target[nearest], rtol=1e-9, atol=0.0)]
    # among the states at the nearest temperature: equilibrated first, then the nearer
    order = np.lexsort((distance[tied], -equil[tied]))
    return library.isel(state=int(tied[order[0]]))


def split_indices(n_states: int, test_fraction: float = 0.1, seed: int = 0,
                  candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """The one train/test split of the project: whole states, never time points.

    A seeded permutation of the state indices (of ``candidates`` if given, a subset); the test
    set holds round(test_fraction * n) of them, at least one and leaving at least one for
    training. Returns sorted (train, test) index arrays.
    """
    pool = np.arange(n_states) if candidates is None else np.asarray(candidates, int)
    if len(pool) < 2:
        raise SupercooledError(f"need at least 2 states to split into train and test, got {len(pool)}")
    if not 0.0 < test_fraction < 1.0:
        raise SupercooledError(f"test_fraction must lie between 0 and 1, got {test_fraction}")
    order = np.random.default_rng(seed).permutation(pool)
    n_test = min(len(pool) - 1, max(1, int(round(test_fraction * len(pool)))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def split_states(ds: xr.Dataset, test_fraction: float = 0.1, seed: int = 0):
    """(train, test) Datasets of the states of :func:`split_indices`."""
    train, test = split_indices(ds.sizes.get("state", 0), test_fraction, seed)
    return ds.isel(state=train), ds.isel(state=test)


def structure_matrix(state: xr.Dataset) -> np.ndarray:
    """(N_k, 2, 2) matrix S_ab(k) of one state (``ds.isel(state=i)`` or a state file), in the
    normalisation of the conventions page (by the total N: S_aa -> x_a)."""
    s = state["S"].transpose("pair", "k").sel(pair=["AA", "AB", "BB"]).values
    out = np.empty((s.shape[1], 2, 2))
    out[:, 0, 0], out[:, 1, 1] = s[0], s[2]
    out[:, 0, 1] = out[:, 1, 0] = s[1]
    return out


def structure_at_peak(state: xr.Dataset) -> np.ndarray:
    """(S_AA, S_AB, S_BB) at the state's k_p, linearly interpolated on its k grid."""
    k = np.asarray(state["k"].values, float)
    k_p = float(state["k_p"].values)
    return np.array([np.interp(k_p, k, state["S"].sel(pair=pair).values) for pair in PAIRS])


def target_curves(ds: xr.Dataset) -> np.ndarray:
    """The paper's eq. 1 targets, (n_state, n_time, 2): F_s^AA = phi_s^A S_AA(k_p) and
    F_s^BB = phi_s^B S_BB(k_p) (:func:`structure_at_peak`); NaN where a run did not sample.
    The one place they are built (the network's targets, the memory equation's data)."""
    phi = ds["phi_s"].transpose("state", "time", "species").sel(species=["A", "B"]).values
    peaks = np.array([structure_at_peak(ds.isel(state=i))[[0, 2]]
                      for i in range(ds.sizes["state"])]).reshape(-1, 2)
    return phi * peaks[:, None, :]


def state_labels(ds: xr.Dataset, states=None) -> list[str]:
    """The ``label`` coordinate (file stem: interaction, density, *target* temperature, and
    ``_aged``) of the given state indices (all by default): the one name of a state."""
    labels = [str(v) for v in np.atleast_1d(ds["label"].values)]
    return labels if states is None else [labels[int(i)] for i in np.atleast_1d(states)]
