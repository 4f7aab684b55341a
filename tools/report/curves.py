"""The loss curves as a check of the scaling law's slope, never as a source of loss per dollar.

The sweep's curves are short runs on real text fitted as loss = E + A · tokens^(−alpha). On so
few tokens the fit often runs into a bound of its search (E = 0: no floor; alpha at the edge of
its range) or fits badly; such a fit says nothing, and extrapolating it to a training budget
would say something false. A usable fit's alpha is compared with the law's data exponent beta,
the slope the law gives for more tokens at a fixed model.
"""

import analysis as a
import law
import tables as t

ALPHA_BOUNDS = (0.01, 2.0)  # the fit's search range for alpha; at or beyond an end is "at bound"
MAX_RMS = 0.05              # a fit further than 5% (RMS, relative) from its points is not a fit


def fit_problem(fit):
    """Why a fit is unusable (every reason, "; "-joined), or None when it is usable."""
    if not fit or not all(isinstance(fit.get(k), (int, float)) for k in ("E", "A", "alpha")):
        return "no fit"
    problems = []
    if fit["E"] <= 0:
        problems.append("E = 0, at its bound")
    if fit["A"] <= 0:
        problems.append("A = 0, at its bound")
    if fit["alpha"] <= ALPHA_BOUNDS[0] or fit["alpha"] >= ALPHA_BOUNDS[1]:
        problems.append(f"alpha {fit['alpha']:.3g} at its search bound")
    rms = fit.get("rms_relative_error")
    if rms is not None and rms > MAX_RMS:
        problems.append(f"fit error {100 * rms:.1f}% > {100 * MAX_RMS:.0f}%")
    return "; ".join(problems) or None


def _law_beta(sweep):
    """(law name, beta) of the sweep's law: from its lines' law_fit where they carry one, else the
    published value (a sweep from before law_fit), else the default's."""
    for r in sweep.law_cost:
        if isinstance(r.get("law_fit"), dict) and "beta" in r["law_fit"]:
            return r["law"], r["law_fit"]["beta"]
    names = law.laws(sweep) or ["besiroglu2024"]
    name = next((n for n in names if n in law.LAW_BETA), None)
    return (name, law.LAW_BETA[name]) if name else (names[0], None)


def check(sweep, presets):
    """"## Loss curves: a check of the law's slope"."""
    name, beta = _law_beta(sweep)
    intro = ["The short loss curves on real text, fitted as loss = E + A · tokens^(−alpha), only "
             f"check the slope of the scaling law ({name}): a usable fit's alpha beside the "
             "law's data exponent beta" + (f" ({beta:g})" if beta is not None else "")
             + ". They are never used for a loss per dollar. A fit with a parameter at its bound "
             f"(E or A = 0, alpha ≤ {ALPHA_BOUNDS[0]:g} or ≥ {ALPHA_BOUNDS[1]:g}) or an RMS "
             f"relative error above {100 * MAX_RMS:.0f}% is unusable.", ""]
    if not sweep.loss_curve:
        return intro + t.note("No loss curves in the sweep: the law's slope goes unchecked.")
    rank = {p: i for i, p in enumerate(presets)}
    rows = []
    for c in sorted(sweep.loss_curve, key=lambda c: (rank.get(c["preset"], 99), c["global_batch"])):
        fit = c.get("fit") or {}
        tokens = [tok for tok, _ in c["points"]]
        span = f"{min(tokens):,.0f} – {max(tokens):,.0f}" if tokens else "—"
        problem = fit_problem(fit)
        if problem:
            usable = f"unusable: {problem}"
        elif beta is not None:
            usable = f"usable: alpha {fit['alpha']:.3g} ÷ law's beta = {fit['alpha'] / beta:.2f}"
        else:
            usable = "usable"
        rows.append([c["preset"], c["global_batch"], c.get("seq", "—"), len(c["points"]), span,
                     a.fmt_sig(fit.get("E"), 4), a.fmt_sig(fit.get("A"), 4),
                     a.fmt_sig(fit.get("alpha"), 4),
                     "—" if fit.get("rms_relative_error") is None
                     else f"{100 * fit['rms_relative_error']:.2f}%", usable])
    header = ["preset", "global batch", "seq", "points", "tokens seen", "E", "A", "alpha",
              "fit RMS relative error", "check"]
    return intro + t.table(header, rows) + [""]
