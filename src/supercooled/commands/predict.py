"""``supercooled predict``: F_s(k_p, t) of a state from its S(k), with the MLP ensemble or the memory predictor."""

from __future__ import annotations

import sys
import warnings


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="predict F_s(k_p, t) and tau_alpha from a structure factor CSV",
        description="Read S_AA, S_AB, S_BB (CSV columns k, S_AA, S_AB, S_BB; normalised so that "
        "S_aa(k -> inf) = x_a; any grid reaching k >= 20 sigma_AA^-1) and predict the self "
        "intermediate scattering functions phi_s and F_s = phi_s S_aa(k_p) at the main peak "
        "with calibrated bounds, tau_alpha with its interval and an out-of-distribution score.")
    p.add_argument("--method", choices=("mlp", "memory"), default="mlp",
                   help="mlp: the neural-network ensemble (default); memory: predict the "
                   "memory function and solve the memory equation")
    p.add_argument("--model", default=None,
                   help="model folder of --method mlp (default: data/models/mlp), JSON file of "
                   "--method memory (default: data/models/memory/predictor.json)")
    p.add_argument("--structure-factor", required=True, help="CSV with k, S_AA, S_AB, S_BB")
    p.add_argument("--interaction", required=True, help="LJ or WCA")
    p.add_argument("--density", required=True, type=float, help="number density rho")
    p.add_argument("--temperature", required=True, type=float, help="temperature T (eps_AA/k_B)")
    p.add_argument("--level", type=float, default=0.68,
                   help="nominal coverage of the bounds: 0.68 or 0.9 (0.68)")
    p.add_argument("--out", default=None, help="CSV to write (default: print to stdout)")
    p.add_argument("--plot", default=None, help="PNG of F_s(k_p, t) with the ensemble band")
    p.set_defaults(func=run)


def run(args) -> int:
    from matplotlib.backend_bases import FigureCanvasBase

    from supercooled.errors import check_output_path
    from supercooled.ml.predict import predict

    # outputs first: a folder that is missing or read-only, or an output that is the input
    # S(k), fails before the model is loaded
    if args.out:
        check_output_path(args.out, inputs=(args.structure_factor,))
    if args.plot:
        check_output_path(args.plot, suffixes=set(FigureCanvasBase.get_supported_filetypes()),
                          inputs=(args.structure_factor, args.out))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = predict(args.structure_factor, args.interaction, args.density,
                        args.temperature, model=args.model, level=args.level,
                        method=args.method)
    for w in caught:
        print(f"supercooled: warning: {w.message}", file=sys.stderr)
    for side in ("below", "above"):
        ks = frame.attrs[f"extrapolated_{side}"]
        if ks:
            print(f"supercooled: note: S(k) extrapolated {side} the file's grid at "
                  f"{len(ks)} grid points (k = {ks[0]:g} ... {ks[-1]:g})", file=sys.stderr)
    text = _header(frame, args) + frame.to_csv(index=False, float_format="%.6g")
    _write(frame, text, args)
    if not args.out:
        sys.stdout.write(text)
    return 0


def _header(frame, args) -> str:
    a = frame.attrs
    ood = a["ood"] or {}
    return (f"# supercooled predict: interaction={args.interaction} density={args.density} "
            f"temperature={args.temperature} k_p={a['k_p']:.4f} "
            f"tau_alpha={a['tau_alpha']:.6g} tau_alpha_lo={a['tau_alpha_lo']:.6g} "
            f"tau_alpha_hi={a['tau_alpha_hi']:.6g} level={a['level']:g} "
            f"calibrated={int(a['calibrated'])} architecture={a['architecture']}\n"
            f"# ood_score={ood.get('score', float('nan')):.3g} "
            f"ood_structure={ood.get('structure', float('nan')):.3g} "
            f"ood_temperature={ood.get('temperature', float('nan')):.3g} "
            f"T_structure={ood.get('T_structure', float('nan')):.4g} "
            f"widening={a['widening']:.3g} (OOD score > 1: further from the training states "
            "than 95 % of them are from each other; bounds widened by the score)\n")


def _write(frame, text: str, args) -> None:
    """The CSV and the figure, each atomically; the figure is drawn first and the CSV is
    written only if it succeeded, so a failed --plot leaves neither."""
    from contextlib import ExitStack

    from supercooled.atomic import replacing, write_text

    a = frame.attrs
    with ExitStack() as stack:
        if args.plot:
            _plot(frame, args, stack.enter_context(replacing(args.plot)))
        if args.out:
            write_text(args.out, text)
    if args.out:
        ood = a["ood"] or {}
        print(f"wrote {args.out}; tau_alpha = {a['tau_alpha']:.4g} tau "
              f"[{a['tau_alpha_lo']:.4g}, {a['tau_alpha_hi']:.4g}] ({a['level']:.0%}); "
              f"OOD score {ood.get('score', float('nan')):.2f}")
    if args.plot:
        print(f"wrote {args.plot}")


def _plot(frame, args, path) -> None:
    """Draw F_s(k_p, t) with its bounds into ``path`` (in the format of ``--plot``'s suffix)."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    try:
        for col, label in (("F_AA", "A"), ("F_BB", "B")):
            ax.plot(frame.t, frame[col], label=f"$F_s^{{{label}{label}}}(k_p, t)$")
            ax.fill_between(frame.t, frame[f"{col}_lo"], frame[f"{col}_hi"], alpha=0.3)
        ax.set_xscale("log")
        ax.set_xlabel(r"$t$ [$\tau$]")
        ax.set_ylabel(r"$F_s^{aa}(k_p, t)$")
        ax.set_title(f"{args.interaction}, rho = {args.density:g}, T = {args.temperature:g}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120, format=Path(args.plot).suffix.lstrip(".").lower())
    finally:
        plt.close(fig)
