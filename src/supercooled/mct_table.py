"""MCT of the state-point library: T_mct per series, its cached table, and MCT's F_s of a state.

The theory (:mod:`supercooled.mct`) works on arrays; this module is where it meets the
library (:mod:`supercooled.library`) and the files in ``data/mct``:

* :func:`temperature_series` and :func:`critical_temperature`: the (T, S) arrays of one
  (interaction, density) series and its T_mct;
* the T_mct table, one row per series (:data:`TABLE_COLUMNS`), written to
  ``critical_temperatures.csv`` with the :func:`library_fingerprint` beside it
  (``critical_temperatures.json``), and recomputed by :func:`ensure_critical_temperature_table`
  only when the library changed; :func:`read_table` and :func:`reduced_temperature` are how
  the other chapters read it;
* :func:`state_fs`: the one "MCT F_s of a library state", used by chapter 6 and by the MCT
  baseline of the MLP.

The default table lives in :func:`supercooled.paths.mct_path` (``data/mct``, or beside
``$SUPERCOOLED_LIBRARY``), so the table written for a library is the one read for it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from supercooled.atomic import replacing
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import load_library, select, structure_matrix
from supercooled.mct import (
    CriticalTemperature,
    critical_temperature_from_series,
    mct_at_peak,
)
from supercooled.paths import mct_path
from supercooled.solver import SolverSettings
from supercooled.systems import DENSITIES, normalize_interaction

#: File name of the T_mct table in :func:`supercooled.paths.mct_path`.
TABLE_FILE = "critical_temperatures.csv"
#: Columns of the T_mct table, in order.
TABLE_COLUMNS = ("interaction", "density", "T_mct", "extrapolated", "n_states", "T_lowest",
                 "T_highest", "T_bracket_low", "T_bracket_high", "note")


def default_critical_temperature_path() -> Path:
    """The T_mct table, ``critical_temperatures.csv`` in :func:`supercooled.paths.mct_path`."""
    return mct_path(TABLE_FILE)


def _library_dataset(library) -> xr.Dataset:
    """A library Dataset as given, or loaded from a folder (None: the default library)."""
    return library if isinstance(library, xr.Dataset) else load_library(library)


# --------------------------------------------------------------------------------------------
# T_mct of a series
# --------------------------------------------------------------------------------------------


def temperature_series(library_ds, interaction, density, *, equilibrated_only: bool = True):
    """(T, S) of one (interaction, density) series: measured temperatures ascending and
    S (n_T, N_k, 2, 2); states with the same target temperature are averaged; crystallised
    states are dropped, and non-equilibrated ones unless ``equilibrated_only`` is False."""
    ds = select(library_ds, interaction=normalize_interaction(interaction), density=float(density))
    keep = np.ones(ds.sizes.get("state", 0), dtype=bool)
    if "crystallized" in ds.coords:
        keep &= np.asarray(ds["crystallized"].values).astype(float) == 0
    if equilibrated_only and "equilibrated" in ds.coords:
        keep &= np.asarray(ds["equilibrated"].values).astype(float) == 1
    ds = ds.isel(state=np.flatnonzero(keep))
    if ds.sizes.get("state", 0) == 0:
        return np.empty(0), np.empty((0, K_GRID.size, 2, 2))
    targets = np.asarray(ds["temperature_target"].values, dtype=float)
    measured = np.asarray(ds["temperature"].values, dtype=float)
    temps, structures = [], []
    for target in np.unique(targets):
        members = np.flatnonzero(np.isclose(targets, target))
        temps.append(float(np.mean(measured[members])))
        structures.append(np.mean([structure_matrix(ds.isel(state=m)) for m in members], axis=0))
    order = np.argsort(temps)
    return np.asarray(temps)[order], np.asarray(structures)[order]


def critical_temperature(library_ds, interaction, density, **kwargs) -> CriticalTemperature:
    """T_mct of one (interaction, density) series of the library from its equilibrated
    S(k; T); ``kwargs`` go to :func:`supercooled.mct.critical_temperature_from_series`."""
    interaction = normalize_interaction(interaction)
    temps, structures = temperature_series(library_ds, interaction, density)
    if temps.size == 0:
        raise SupercooledError(f"the library has no equilibrated {interaction} states at "
                               f"density {density}")
    return critical_temperature_from_series(temps, structures, density,
                                            interaction=interaction, **kwargs)


# --------------------------------------------------------------------------------------------
# The T_mct table and its cache
# --------------------------------------------------------------------------------------------


def table_row(result: CriticalTemperature) -> dict:
    """One row of the T_mct table (:data:`TABLE_COLUMNS`) from a :class:`CriticalTemperature`."""
    return {"interaction": result.interaction, "density": result.density,
            "T_mct": result.T_mct, "extrapolated": int(result.extrapolated),
            "n_states": result.n_states, "T_lowest": result.T_lowest,
            "T_highest": result.T_highest, "T_bracket_low": result.bracket[0],
            "T_bracket_high": result.bracket[1], "note": result.note}


def _missing_row(interaction, density, note: str) -> dict:
    return table_row(CriticalTemperature(interaction, float(density), float("nan"), False, 0,
                                         float("nan"), float("nan"), (np.nan, np.nan), note))


def _replace_atomically(path: Path, write) -> None:
    """``write(temporary)`` then rename over ``path``: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temporary:
        write(temporary)


def critical_temperature_table(library=None, out=None, *, densities=None,
                               interactions=("LJ", "WCA"), tolerance: float = 1e-4,
                               progress: bool = False) -> pd.DataFrame:
    """T_mct for every (interaction, density) as a DataFrame; written to ``out`` (CSV) if given.

    ``library`` is a Dataset or a folder (default: the library of supercooled.paths);
    ``tolerance`` is the relative bisection tolerance on T_mct. Series without equilibrated
    states get a row with NaN and a note, so the table always has len(interactions) x
    len(densities) rows. ``out=True`` writes to :func:`default_critical_temperature_path`.
    """
    ds = _library_dataset(library)
    pairs = [(i, d) for i in interactions for d in (densities or DENSITIES)]
    if progress:
        from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

        pairs = tqdm(pairs, desc="T_mct", unit="series")
    rows = []
    for interaction, density in pairs:
        try:
            rows.append(table_row(critical_temperature(ds, interaction, density,
                                                       tolerance=tolerance)))
        except SupercooledError as error:
            rows.append(_missing_row(interaction, density, str(error)))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    if out is not None and out is not False:
        path = default_critical_temperature_path() if out is True else Path(out)
        _replace_atomically(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
    return table


def library_fingerprint(library_ds) -> str:
    """A hash of the states T_mct depends on (label, measured T, flags), to detect changes."""
    keys = []
    for i in range(library_ds.sizes.get("state", 0)):
        st = library_ds.isel(state=i)
        keys.append("|".join(str(st[c].values) for c in ("interaction", "density",
                                                         "temperature_target") if c in st.coords)
                    + f"|{float(st['temperature'].values):.6g}"
                    + f"|{int(st['equilibrated'].values) if 'equilibrated' in st.coords else 1}"
                    + f"|{int(st['crystallized'].values) if 'crystallized' in st.coords else 0}")
    return hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()


def ensure_critical_temperature_table(library=None, out=None, *, refresh: bool = False,
                                      progress: bool = False) -> pd.DataFrame:
    """The T_mct table, recomputed only if the library changed since ``out`` was written.

    The library's :func:`library_fingerprint` is stored beside the CSV (same name, .json);
    if it matches and ``refresh`` is False the CSV is read, otherwise
    :func:`critical_temperature_table` regenerates both. ``out`` defaults to
    :func:`default_critical_temperature_path`. An empty library is an error (a mistyped
    folder loads as one), so a table is never replaced by NaN rows.
    """
    ds = _library_dataset(library)
    n_states = int(ds.sizes.get("state", 0))
    if not n_states:
        raise SupercooledError(f"library {library or 'data/library'} holds no states; "
                               "T_mct table not written")
    path = Path(out) if out is not None else default_critical_temperature_path()
    sidecar = path.with_suffix(".json")
    fingerprint = library_fingerprint(ds)
    if not refresh and path.is_file() and sidecar.is_file():
        try:
            if json.loads(sidecar.read_text()).get("library_fingerprint") == fingerprint:
                return pd.read_csv(path)
        except (OSError, ValueError):
            pass
    table = critical_temperature_table(ds, path, progress=progress)
    text = json.dumps({"library_fingerprint": fingerprint, "n_states": n_states}, indent=1) + "\n"
    _replace_atomically(sidecar, lambda tmp: tmp.write_text(text))
    return table


def read_table(path=None) -> pd.DataFrame | None:
    """The T_mct table at ``path`` (default :func:`default_critical_temperature_path`), or
    None if there is none."""
    path = default_critical_temperature_path() if path is None else Path(path)
    return pd.read_csv(path, comment="#") if path.is_file() else None


def reduced_temperature(ds, table=None) -> np.ndarray:
    """T / T_mct per state of ``ds`` (measured T), with the T_mct of its (interaction,
    density); NaN where unknown. ``table``: a DataFrame, a CSV path or None (the default
    table; all NaN if it does not exist)."""
    n = ds.sizes["state"]
    if not isinstance(table, pd.DataFrame):
        table = read_table(table)
    if table is None:
        return np.full(n, np.nan)
    lookup = {(normalize_interaction(r.interaction), round(float(r.density), 3)): float(r.T_mct)
              for r in table.itertuples() if np.isfinite(float(r.T_mct))}
    out = np.full(n, np.nan)
    for i in range(n):
        key = (normalize_interaction(str(ds["interaction"].values[i])),
               round(float(ds["density"].values[i]), 3))
        if key in lookup:
            out[i] = float(ds["temperature"].values[i]) / lookup[key]
    return out


# --------------------------------------------------------------------------------------------
# MCT F_s of a library state
# --------------------------------------------------------------------------------------------


def state_fs(ds, i: int, times=TIME_GRID, *, n_per_block: int = 128) -> np.ndarray:
    """MCT's F_s^AA(k_p, t), F_s^BB(k_p, t) (the paper's eq. 1 target) of state ``i`` of ``ds``.

    The tagged (self) MCT equations with Newtonian dynamics, like the MD, from the state's
    S_ab(k) (:func:`supercooled.library.structure_matrix`), density, *measured* temperature and
    k_p, interpolated from the solver's times onto ``times``. Returns (len(times), 2), NaN
    beyond the solved window.

    Resolution: ``n_per_block=128`` points per time-doubling block, first step 1e-6 tau,
    fixed-point tolerance 1e-10, solved up to max(times): the defaults of
    :func:`supercooled.mct.solve_mct`, which the MLP's MCT baseline has always used (its
    curves are stored with the shipped model, ``data/models/mlp/mct_curves.csv``). Chapter 6
    used to solve with 64 points per block; the two differ by up to ~4e-3 in F_s on the
    library's LJ rho = 1.2 series (64 leaves a discretisation error near 1e-3), which moves
    chapter 6's R^2 only in the fourth decimal. One solve takes a few seconds.
    """
    st = ds.isel(state=int(i))
    times = np.asarray(times, dtype=float)
    settings = SolverSettings(n_per_block=n_per_block, t_initial=1e-6,
                              t_max=float(np.nanmax(times)), tolerance=1e-10)
    result = mct_at_peak(structure_matrix(st), float(st["density"].values),
                         float(st["temperature"].values), float(st["k_p"].values),
                         kind="tagged", dynamics="newtonian", times=times, settings=settings)
    return result.F_s
