"""The reports of the explorer's checks as Rich text: the built-in checks (c) and the gradient
check of one parameter (k). Pure: findings and results in, `Text` out."""
from __future__ import annotations

from rich.text import Text

from .style import Style


def checks_report(findings: list, first_bad: int | None, style: Style) -> Text:
    """Problems first, then passes, each with the event it is about (counted from 1);
    `first_bad`: the event the cursor moved to, if any."""
    bad = [f for f in findings if not f.ok]
    text = Text()
    text.append(f"{len(findings)} findings, {len(bad)} problems\n\n", style="bold")
    for f in sorted(findings, key=lambda f: f.ok):
        mark = "PASS" if f.ok else f.severity.upper()
        text.append(f"{mark:<8}", style=("bold red" if not f.ok else "green")
                    if style.color else "bold")
        text.append(f"{f.check}", style="bold")
        where = f" @ event {f.event_index + 1}" if f.event_index is not None else ""
        text.append(f"{where}\n  {f.message}\n")
    if first_bad is not None:
        text.append(f"\nThe cursor moved to event {first_bad + 1}, the first one to blame.",
                    style="bold")
    return text


def gradient_check_report(result) -> Text:
    """The verdict, then analytic against numeric gradient per sampled element (counted
    from 1); `result`: an engine.trace.gradcheck result."""
    text = Text()
    verdict = "OK" if result.ok else "MISMATCH"
    text.append(f"{result.param}: {verdict}  max err {result.max_rel_error:.3g} "
                f"(tolerance {result.tolerance:g}, {result.dtype})\n", style="bold")
    # the engine divides by max(|a| + |n|, floor): for gradients near 0 the error is absolute
    text.append(f"err: relative error |a-n|/(|a|+|n|); * absolute below floor "
                f"{result.floor:.3g}\n\n", style="dim")
    text.append(f"{'element':<14}{'analytic':>12}{'numeric':>12}{'err':>10}\n", style="bold")
    for idx, a, n, r in zip(result.indices, result.analytic, result.numeric, result.rel_error):
        floored = "*" if abs(a) + abs(n) < result.floor else ""
        element = "(" + ", ".join(str(int(i) + 1) for i in idx) + ")"
        text.append(f"{element:<14}{a:>12.4g}{n:>12.4g}{r:>10.2g}{floored}\n")
    text.append(f"\nelement: (row, column) in the parameter, counted from 1\n{result.note}\n",
                style="dim")
    return text
