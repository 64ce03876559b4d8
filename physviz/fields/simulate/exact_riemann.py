"""Exact solution of the 1D Euler Riemann problem for an ideal gas (Toro, Riemann Solvers, chapter 4)."""
from __future__ import annotations

import math

import numpy as np

from physviz.errors import ParameterError, SimulationError

State = tuple[float, float, float]  # (rho, u, p)


def _pressure_function(p: float, rho: float, pk: float, ck: float, gamma: float) -> tuple[float, float]:
    """Toro's f_K(p) and its derivative: shock branch for p > p_K, rarefaction branch otherwise."""
    if p > pk:
        a = 2.0 / ((gamma + 1.0) * rho)
        b = (gamma - 1.0) / (gamma + 1.0) * pk
        root = math.sqrt(a / (p + b))
        return (p - pk) * root, root * (1.0 - 0.5 * (p - pk) / (p + b))
    ratio = p / pk
    f = 2.0 * ck / (gamma - 1.0) * (ratio ** ((gamma - 1.0) / (2.0 * gamma)) - 1.0)
    df = ratio ** (-(gamma + 1.0) / (2.0 * gamma)) / (rho * ck)
    return f, df


def _check_state(name: str, state: State) -> None:
    rho, u, p = (float(v) for v in state)
    if not (rho > 0 and p > 0 and math.isfinite(rho) and math.isfinite(p) and math.isfinite(u)):
        raise ParameterError(f"{name} state {state} needs finite density > 0 and pressure > 0.")


def star_state(left: State, right: State, gamma: float = 1.4, tol: float = 1e-12, max_iter: int = 100) -> tuple[float, float]:
    """Pressure and velocity (p*, u*) between the nonlinear waves, by Newton iteration on f_L + f_R + du = 0."""
    if not gamma > 1:
        raise ParameterError(f"gamma={gamma} must be > 1.")
    _check_state("left", left)
    _check_state("right", right)
    rl, ul, pl = (float(v) for v in left)
    rr, ur, pr = (float(v) for v in right)
    cl, cr = math.sqrt(gamma * pl / rl), math.sqrt(gamma * pr / rr)
    du = ur - ul
    if 2.0 * (cl + cr) / (gamma - 1.0) <= du:
        raise ParameterError(f"The Riemann problem {left} | {right} creates a vacuum (pressure positivity condition fails).")
    # primitive-variable (PVRS) guess, kept positive (Toro 4.3.2)
    p = max(0.5 * (pl + pr) - 0.125 * du * (rl + rr) * (cl + cr), tol)
    for _ in range(max_iter):
        fl, dfl = _pressure_function(p, rl, pl, cl, gamma)
        fr, dfr = _pressure_function(p, rr, pr, cr, gamma)
        p_new = max(p - (fl + fr + du) / (dfl + dfr), tol)
        change = 2.0 * abs(p_new - p) / (p_new + p)
        p = p_new
        if change < tol:
            break
    else:
        raise SimulationError(f"Exact Riemann solver: Newton iteration for p* did not converge for {left} | {right}.")
    fl, _ = _pressure_function(p, rl, pl, cl, gamma)
    fr, _ = _pressure_function(p, rr, pr, cr, gamma)
    return p, 0.5 * (ul + ur) + 0.5 * (fr - fl)


def _star_density(p_star: float, rho: float, pk: float, gamma: float) -> float:
    """Density behind the wave of side K: shock Hugoniot or isentrope."""
    ratio = p_star / pk
    if p_star > pk:
        g = (gamma - 1.0) / (gamma + 1.0)
        return rho * (ratio + g) / (g * ratio + 1.0)
    return rho * ratio ** (1.0 / gamma)


def sample(xi: np.ndarray, left: State, right: State, gamma: float = 1.4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rho, u, p) of the self-similar solution at speeds xi = (x - x0) / t."""
    p_star, u_star = star_state(left, right, gamma)
    xi = np.asarray(xi, dtype=np.float64)
    rho = np.empty_like(xi)
    u = np.empty_like(xi)
    p = np.empty_like(xi)
    for side, sign in ((left, -1.0), (right, 1.0)):
        rk, uk, pk = (float(v) for v in side)
        ck = math.sqrt(gamma * pk / rk)
        mask = xi < u_star if sign < 0 else xi >= u_star
        x = xi[mask]
        # the right side is mirrored (x -> -x, u -> -u) so both sides use the left-wave formulas
        xm, um, ustar_m = sign * -x, sign * -uk, sign * -u_star
        r_star = _star_density(p_star, rk, pk, gamma)
        out_r = np.full(x.shape, r_star)
        out_u = np.full(x.shape, ustar_m)
        out_p = np.full(x.shape, p_star)
        if p_star > pk:  # shock
            s = um - ck * math.sqrt((gamma + 1.0) / (2.0 * gamma) * p_star / pk + (gamma - 1.0) / (2.0 * gamma))
            ahead = xm < s
            out_r[ahead], out_u[ahead], out_p[ahead] = rk, um, pk
        else:  # rarefaction fan
            c_star = ck * (p_star / pk) ** ((gamma - 1.0) / (2.0 * gamma))
            head, tail = um - ck, ustar_m - c_star
            ahead = xm < head
            fan = (xm >= head) & (xm < tail)
            out_r[ahead], out_u[ahead], out_p[ahead] = rk, um, pk
            xf = xm[fan]
            base = 2.0 / (gamma + 1.0) + (gamma - 1.0) / ((gamma + 1.0) * ck) * (um - xf)
            out_r[fan] = rk * base ** (2.0 / (gamma - 1.0))
            out_u[fan] = 2.0 / (gamma + 1.0) * (ck + 0.5 * (gamma - 1.0) * um + xf)
            out_p[fan] = pk * base ** (2.0 * gamma / (gamma - 1.0))
        rho[mask], u[mask], p[mask] = out_r, sign * -out_u, out_p
    return rho, u, p


def exact_riemann(
    x: np.ndarray, t: float, left: State, right: State, x0: float = 0.5, gamma: float = 1.4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rho, u, p) at positions x and time t > 0 for an initial jump at x0 between left and right states."""
    if not t > 0:
        raise ParameterError(f"t={t} must be positive.")
    return sample((np.asarray(x, dtype=np.float64) - x0) / t, left, right, gamma)
