"""Figures shared by the chapters: structure factors, correlation functions, relaxation times.

Every function draws on a matplotlib ``Axes`` (a new one when ``ax`` is None), labels the axes
in Lennard-Jones units of the A-A interaction (sigma_AA, tau, eps_AA), and returns the Axes.
State arguments are Datasets of the library schema (:mod:`supercooled.library`): one state
file, or one element of a loaded library (``library.isel(state=i)``).
"""

from __future__ import annotations

import numpy as np

from supercooled.systems import PAIRS

K_LABEL = r"wave number $k$ [$\sigma_{AA}^{-1}$]"
TIME_LABEL = r"time $t$ [$\tau$]"


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def plot_structure_factors(state, ax=None, *, pairs=PAIRS, label: str | None = None, **kwargs):
    """S_ab(k) of one state against k, one line per pair (S_aa -> x_a, S_ab -> 0 at large k)."""
    ax = _axes(ax)
    prefix = f"{label}: " if label else ""
    for i, pair in enumerate(pairs):
        style = {"color": f"C{i}"} | kwargs
        ax.plot(state["k"], state["S"].sel(pair=pair), label=f"{prefix}$S_{{{pair}}}$", **style)
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.set_xlabel(K_LABEL)
    ax.set_ylabel(r"partial structure factor $S_{ab}(k)$")
    return ax


def plot_time_correlation(state, variable: str = "phi_s", ax=None, *, species: str = "A",
                          label: str | None = None, **kwargs):
    """phi_s (log t axis) or msd (log-log) of one species; NaN beyond the sampled times is skipped."""
    ax = _axes(ax)
    values = state[variable].sel(species=species)
    finite = np.isfinite(values.values)
    ax.plot(state["time"].values[finite], values.values[finite], label=label, **kwargs)
    ax.set_xscale("log")
    ax.set_xlabel(TIME_LABEL)
    if variable == "msd":
        ax.set_yscale("log")
        ax.set_ylabel(rf"mean squared displacement of {species} [$\sigma_{{AA}}^2$]")
    elif variable.startswith("phi_s"):
        ax.set_ylabel(rf"self ISF $\phi_s^{{{species}}}(k_p, t)$")
    else:
        ax.set_ylabel(variable)
    return ax


def plot_tau_alpha(temperature, tau, ax=None, *, label: str | None = None, **kwargs):
    """ln tau_alpha against 1/T (an Arrhenius plot: a straight line for activated dynamics)."""
    ax = _axes(ax)
    temperature = np.asarray(temperature, dtype=float)
    tau = np.asarray(tau, dtype=float)
    order = np.argsort(temperature)
    style = {"marker": "o"} | kwargs
    ax.semilogy(1.0 / temperature[order], tau[order], label=label, **style)
    ax.set_xlabel(r"inverse temperature $1/T$ [$k_B/\epsilon_{AA}$]")
    ax.set_ylabel(r"relaxation time $\tau_\alpha$ [$\tau$]")
    return ax


def plot_state_map(library, ax=None, **kwargs):
    """Where the library's states lie in the (density, temperature) plane, by interaction.

    Equilibrated states are filled markers, aged glasses open ones, crystallised runs crosses.
    """
    ax = _axes(ax)
    markers = {"LJ": "o", "WCA": "s"}
    for i, interaction in enumerate(sorted(set(library["interaction"].values.tolist()))):
        part = library.isel(state=np.flatnonzero(library["interaction"].values == interaction))
        rho = part["density"].values.astype(float)
        temperature = part["temperature"].values.astype(float)
        equilibrated = part["equilibrated"].values.astype(int) == 1
        crystal = part["crystallized"].values.astype(int) == 1
        color = f"C{i}"
        marker = markers.get(interaction, "D")
        good = equilibrated & ~crystal
        ax.scatter(rho[good], temperature[good], marker=marker, color=color, label=interaction,
                   **kwargs)
        aged = ~equilibrated & ~crystal
        if aged.any():
            ax.scatter(rho[aged], temperature[aged], marker=marker, facecolor="none",
                       edgecolor=color, label=f"{interaction} (aged)", **kwargs)
        if crystal.any():
            ax.scatter(rho[crystal], temperature[crystal], marker="x", color=color,
                       label=f"{interaction} (crystallised)", **kwargs)
    ax.set_yscale("log")
    ax.set_xlabel(r"density $\rho$ [$\sigma_{AA}^{-3}$]")
    ax.set_ylabel(r"temperature $T$ [$\epsilon_{AA}/k_B$]")
    return ax


def _equilibrated(library):
    keep = (library["equilibrated"].values.astype(int) == 1) & \
        (library["crystallized"].values.astype(int) == 0)
    return library.isel(state=np.flatnonzero(keep))


def plot_tau_map(library, ax=None, **kwargs):
    """Equilibrated states in the (density, temperature) plane, coloured by log10 tau_alpha.

    States without a finite tau_alpha keep only their marker edge. With no equilibrated state
    that has one (an empty library, only aged or crystallised runs) the axes are labelled and
    say so, without a colour bar.
    """
    ax = _axes(ax)
    part = _equilibrated(library)
    markers = {"LJ": "o", "WCA": "s"}
    tau = part["tau_alpha"].values.astype(float)
    keep = np.isfinite(tau) & (tau > 0)
    ax.set_xlabel(r"density $\rho$ [$\sigma_{AA}^{-3}$]")
    ax.set_ylabel(r"temperature $T$ [$\epsilon_{AA}/k_B$]")
    if not keep.any():
        ax.text(0.5, 0.5, "no equilibrated state with a measured $\\tau_\\alpha$",
                transform=ax.transAxes, ha="center", va="center")
        return ax
    from matplotlib.colors import Normalize

    norm = Normalize(np.min(np.log10(tau[keep])), np.max(np.log10(tau[keep])))
    for interaction in sorted(set(part["interaction"].values.tolist())):
        mask = part["interaction"].values == interaction
        # LJ and WCA share densities: offset WCA slightly so both stay visible.
        shift = 0.015 if interaction == "WCA" else -0.015
        points = ax.scatter(part["density"].values[mask].astype(float) + shift,
                            part["temperature"].values[mask].astype(float),
                            c=np.log10(tau[mask]), norm=norm, cmap="viridis",
                            marker=markers.get(interaction, "D"), edgecolor="k", linewidth=0.4,
                            label=interaction, **kwargs)
    ax.figure.colorbar(points, ax=ax, label=r"$\log_{10}(\tau_\alpha / \tau)$")
    ax.set_yscale("log")
    return ax


def plot_density_scaling(library, interaction: str, gamma: float, ax=None, **kwargs):
    """Reduced tau_alpha of every density against rho^gamma / T: one curve if density scaling holds.

    The reduced time unit is rho^(-1/3) T^(-1/2) (see :func:`supercooled.dynamics.density_scaling_collapse`).
    """
    from supercooled.dynamics import density_scaling_collapse

    ax = _axes(ax)
    part = _equilibrated(library)
    part = part.isel(state=np.flatnonzero(part["interaction"].values == interaction))
    for i, rho in enumerate(sorted(set(part["density"].values.astype(float).tolist()))):
        mask = part["density"].values.astype(float) == rho
        x, log_tau = density_scaling_collapse(rho, part["temperature"].values[mask],
                                              part["tau_alpha"].values[mask], gamma)
        order = np.argsort(x)
        ax.semilogy(x[order], np.exp(log_tau[order]), "o-", color=f"C{i}",
                    label=rf"$\rho = {rho:.1f}$", **kwargs)
    ax.set_xscale("log")
    ax.set_xlabel(rf"$\rho^{{\gamma}} / T$ with $\gamma = {gamma:.2f}$ [$\sigma_{{AA}}^{{-3\gamma}} k_B / \epsilon_{{AA}}$]")
    ax.set_ylabel(r"reduced relaxation time $\tau_\alpha \rho^{1/3} T^{1/2}$ [dimensionless]")
    ax.set_title(f"{interaction}: density scaling")
    ax.legend(fontsize="small")
    return ax
