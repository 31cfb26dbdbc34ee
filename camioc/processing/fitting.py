"""Gaussian and linear fits with cam_server's semantics, fast.

cam_server fits ``offset + amplitude * exp(-(x - mean)**2 / (2 sigma**2))`` to a profile with
``scipy.optimize.curve_fit`` (MINPACK ``lmdif``: Levenberg-Marquardt with a trust region, forward
difference Jacobian, ``ftol = xtol = 1.49012e-8``, ``gtol = 0``, ``maxfev = 1000``, step bound
factor 100) starting from fixed initial guesses, and falls back to those guesses when the fit
raises. That costs about 1-2 ms per 2000-sample profile, and a frame with good region and slices
needs nine fits.

This module runs *the same algorithm* (Moré's MINPACK control flow: the same step-bound and
Levenberg-parameter updates, the same convergence tests and the same function-evaluation
budget, counted as lmdif counts them) compiled with numba, with two changes that do not move
the optimum:

* the Jacobian is analytic instead of forward differences (an O(1e-8) relative difference);
* J, its QR factorisation and ``Q^T f`` are never formed: one pass over the samples accumulates
  ``J^T J`` (4×4) and ``J^T f``; the pivoted triangular factor R and ``Q^T f`` come from a
  pivoted Cholesky factorisation of ``J^T J``, and the damped systems that MINPACK's ``lmpar``
  solves with ``qrsolv`` are solved by Cholesky of ``J^T J + par D^2`` (the same quantities in
  exact arithmetic). One evaluation is one pass with one ``exp`` per sample.

The kernels use numba's ``error_model="numpy"``: a division by zero gives inf/NaN and the
iteration proceeds as MINPACK's C code would, instead of raising from inside the fit. Loop bounds
are taken from array shapes rather than the constant 4, which keeps LLVM from unrolling every
4×4 loop (compile time matters: it is paid once per machine, then numba's cache is used).

Because the iterates follow MINPACK's path, the result lands on the optimum scipy finds (to about
1e-6 relative on beam profiles, see the tests) and fails where scipy fails (maxfev exhausted,
tolerances too small: info 5-8), in which case the initial guesses are returned, as cam_server
does. On pure-noise profiles (no beam) the least-squares problem is a flat valley; both
implementations stop somewhere in it and agree only to the noise level.

The linear fit used for the slice coupling is solved in closed form: curve_fit's LM on a linear
model converges to the ordinary least-squares solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from camioc.processing.kernels import gauss_evaluate

__all__ = ["GaussianFit", "fit_gaussian", "gaussian", "linear_fit"]

_EPSMCH = float(np.finfo(np.float64).eps)
_DWARF = float(np.finfo(np.float64).tiny)
_FTOL = 1.49012e-08
_XTOL = 1.49012e-08
_MAXFEV = 1000  # scipy: 200 * (n + 1) without a Jacobian
_FACTOR = 100.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: exp(-745) underflows to 0; beyond this exponent a sample's model value is the offset.
_EXP_CUTOFF = 745.0


@dataclass(frozen=True, slots=True)
class GaussianFit:
    """Result of :func:`fit_gaussian` (``standard_deviation`` is non-negative)."""

    offset: float
    amplitude: float
    mean: float
    standard_deviation: float
    #: False when the fit failed and the initial guesses were returned (cam_server's fall-back).
    converged: bool


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def _evaluate(x, y, p, jtj, jtf):
    """``||f||^2`` for ``f = model(p) - y`` and the normal matrix ``J^T J`` and ``J^T f`` at p."""
    o = p[0]
    a = p[1]
    mu = p[2]
    s = p[3]
    two_s2 = 2.0 * s * s
    inv_s2 = 1.0 / (s * s)
    f2 = 0.0
    a01 = 0.0
    a02 = 0.0
    a03 = 0.0
    a11 = 0.0
    a12 = 0.0
    a13 = 0.0
    a22 = 0.0
    a23 = 0.0
    a33 = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    g3 = 0.0
    n = x.shape[0]
    for i in range(n):
        d = x[i] - mu
        t = (d * d) / two_s2
        e = math.exp(-t) if t < _EXP_CUTOFF else 0.0
        r = o + a * e - y[i]
        f2 += r * r
        j2 = a * e * d * inv_s2
        j3 = j2 * d / s
        g0 += r
        g1 += e * r
        g2 += j2 * r
        g3 += j3 * r
        a01 += e
        a02 += j2
        a03 += j3
        a11 += e * e
        a12 += e * j2
        a13 += e * j3
        a22 += j2 * j2
        a23 += j2 * j3
        a33 += j3 * j3
    jtj[0, 0] = float(n)
    jtj[0, 1] = a01
    jtj[0, 2] = a02
    jtj[0, 3] = a03
    jtj[1, 1] = a11
    jtj[1, 2] = a12
    jtj[1, 3] = a13
    jtj[2, 2] = a22
    jtj[2, 3] = a23
    jtj[3, 3] = a33
    for k in range(4):
        for m in range(k):
            jtj[k, m] = jtj[m, k]
    jtf[0] = g0
    jtf[1] = g1
    jtf[2] = g2
    jtf[3] = g3
    return f2


@njit(cache=True, nogil=True, error_model="numpy")
def _enorm(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return math.sqrt(s)


@njit(cache=True, nogil=True, error_model="numpy")
def _factorize(jtj, jtf, r, ipvt, qtf):
    """Pivoted R with ``R^T R = P^T J^T J P`` and ``qtf = R^-T P^T J^T f`` (what qrfac yields).

    Pivoting picks the largest remaining Schur-complement diagonal, i.e. the remaining column
    of largest norm, as qrfac does. A non-positive pivot marks the remaining columns singular
    (R's diagonal 0 there), as an exactly dependent column does in qrfac.
    """
    n = jtj.shape[0]  # runtime size: constant 4 makes LLVM unroll everything (slow to compile)
    s = jtj.copy()
    for j in range(n):
        ipvt[j] = j
        qtf[j] = 0.0
        for i in range(n):
            r[i, j] = 0.0
    rank = n
    for j in range(n):
        kmax = j
        for k in range(j, n):
            if s[k, k] > s[kmax, kmax]:
                kmax = k
        if kmax != j:
            for i in range(n):
                t = s[i, j]
                s[i, j] = s[i, kmax]
                s[i, kmax] = t
            for i in range(n):
                t = s[j, i]
                s[j, i] = s[kmax, i]
                s[kmax, i] = t
            for i in range(j):
                t = r[i, j]
                r[i, j] = r[i, kmax]
                r[i, kmax] = t
            ti = ipvt[j]
            ipvt[j] = ipvt[kmax]
            ipvt[kmax] = ti
        d = s[j, j]
        if not d > 0.0:
            rank = j
            break
        rjj = math.sqrt(d)
        r[j, j] = rjj
        for k in range(j + 1, n):
            r[j, k] = s[j, k] / rjj
        for k in range(j + 1, n):
            for m in range(j + 1, n):
                s[k, m] -= r[j, k] * r[j, m]
    for j in range(rank):
        t = jtf[ipvt[j]]
        for i in range(j):
            t -= r[i, j] * qtf[i]
        qtf[j] = t / r[j, j]


@njit(cache=True, nogil=True, error_model="numpy")
def _cholesky_solve(m, b, lower, x):
    """Solve the SPD system ``m x = b`` by Cholesky (``m = L L^T`` into ``lower``); False if not PD."""
    n = m.shape[0]
    for j in range(n):
        t = m[j, j]
        for k in range(j):
            t -= lower[j, k] * lower[j, k]
        if not t > 0.0:
            return False
        lower[j, j] = math.sqrt(t)
        for i in range(j + 1, n):
            u = m[i, j]
            for k in range(j):
                u -= lower[i, k] * lower[j, k]
            lower[i, j] = u / lower[j, j]
    for i in range(n):
        t = b[i]
        for k in range(i):
            t -= lower[i, k] * x[k]
        x[i] = t / lower[i, i]
    for i in range(n - 1, -1, -1):
        t = x[i]
        for k in range(i + 1, n):
            t -= lower[k, i] * x[k]
        x[i] = t / lower[i, i]
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def _lmpar(r, ipvt, diag, qtb, jtj, jtf, delta, par, x):  # noqa: C901, PLR0912
    """MINPACK lmpar: the Levenberg-Marquardt parameter for the step bound ``delta``.

    Same iteration as MINPACK; where lmpar calls qrsolv to solve ``(J^T J + par D^2) x = J^T f``
    and to get the triangular factor S of that matrix for the Newton correction
    ``||S^-T D^2 x|| / ||D x||``, this uses a Cholesky factorisation of the 4×4 matrix itself
    (the same quantities, permutation-free: ``||S^-T P^T v||^2 = v^T (J^T J + par D^2)^-1 v``).
    The Gauss-Newton step (par = 0) still uses the pivoted R so that a rank-deficient Jacobian
    gets MINPACK's truncated solution.
    """
    n = r.shape[0]  # runtime size: constant 4 makes LLVM unroll everything (slow to compile)
    wa1 = np.empty(n)
    wa2 = np.empty(n)
    m = np.empty((n, n))
    lower = np.empty((n, n))
    nsing = n
    for j in range(n):
        wa1[j] = qtb[j]
        if r[j, j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa1[j] = 0.0
    for k in range(nsing):
        j = nsing - 1 - k
        wa1[j] = wa1[j] / r[j, j]
        temp = wa1[j]
        for i in range(j):
            wa1[i] -= r[i, j] * temp
    for j in range(n):
        x[ipvt[j]] = wa1[j]
    for j in range(n):
        wa2[j] = diag[j] * x[j]
    dxnorm = _enorm(wa2)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0
    parl = 0.0
    if nsing >= n:
        for j in range(n):
            wa1[j] = diag[ipvt[j]] * (wa2[ipvt[j]] / dxnorm)
        for j in range(n):
            t = 0.0
            for i in range(j):
                t += r[i, j] * wa1[i]
            wa1[j] = (wa1[j] - t) / r[j, j]
        temp = _enorm(wa1)
        parl = ((fp / delta) / temp) / temp
    for j in range(n):
        wa1[j] = jtf[j] / diag[j]  # = (R^T Q^T f) / D, permuted
    gnorm = _enorm(wa1)
    paru = gnorm / delta
    if paru == 0.0:
        paru = _DWARF / min(delta, 0.1)
    par = max(par, parl)
    par = min(par, paru)
    if par == 0.0:
        par = gnorm / dxnorm
    it = 0
    while True:
        it += 1
        if par == 0.0:
            par = max(_DWARF, 0.001 * paru)
        for i in range(n):
            for j in range(n):
                m[i, j] = jtj[i, j]
            m[i, i] += par * diag[i] * diag[i]
        if not _cholesky_solve(m, jtf, lower, x):
            return par  # cannot happen for par > 0 and D > 0 unless J^T J is not finite
        for j in range(n):
            wa2[j] = diag[j] * x[j]
        dxnorm = _enorm(wa2)
        temp = fp
        fp = dxnorm - delta
        if abs(fp) <= 0.1 * delta or (parl == 0.0 and fp <= temp and temp < 0.0) or it == 10:
            break
        # Newton correction: ||L^-1 (D^2 x / ||D x||)||
        for i in range(n):
            t = diag[i] * (wa2[i] / dxnorm)
            for k in range(i):
                t -= lower[i, k] * wa1[k]
            wa1[i] = t / lower[i, i]
        temp = _enorm(wa1)
        parc = ((fp / delta) / temp) / temp
        if fp > 0.0:
            parl = max(parl, par)
        if fp < 0.0:
            paru = min(paru, par)
        par = max(parl, par + parc)
    return par


@njit(cache=True, nogil=True, error_model="numpy")
def _lmdif(x, y, p):  # noqa: C901, PLR0912, PLR0915
    """MINPACK lmdif's iteration on the gaussian model, in place on ``p``; returns ``info``.

    info 1-4: converged (curve_fit accepts); 5: maxfev; 6-8: tolerances too small (curve_fit
    raises for 5-8).
    """
    n = p.shape[0]  # runtime size: constant 4 makes LLVM unroll everything (slow to compile)
    jtj = np.empty((n, n))
    jtf = np.empty(n)
    jtj1 = np.empty((n, n))
    jtf1 = np.empty(n)
    r = np.empty((n, n))
    ipvt = np.empty(n, np.int64)
    qtf = np.empty(n)
    diag = np.empty(n)
    cnorm = np.empty(n)
    step = np.empty(n)
    trial = np.empty(n)
    wa3 = np.empty(n)
    fnorm = math.sqrt(_evaluate(x, y, p, jtj, jtf))
    nfev = 1
    par = 0.0
    it = 1
    delta = 0.0
    xnorm = 0.0
    while True:
        nfev += n  # lmdif spends n evaluations on its forward-difference Jacobian
        for j in range(n):
            cnorm[j] = math.sqrt(jtj[j, j])
        _factorize(jtj, jtf, r, ipvt, qtf)
        if it == 1:
            for j in range(n):
                diag[j] = cnorm[j] if cnorm[j] != 0.0 else 1.0
                wa3[j] = diag[j] * p[j]
            xnorm = _enorm(wa3)
            delta = _FACTOR * xnorm
            if delta == 0.0:
                delta = _FACTOR
        gnorm = 0.0
        if fnorm != 0.0:
            for j in range(n):
                if cnorm[j] != 0.0:
                    gnorm = max(gnorm, abs(jtf[j] / fnorm / cnorm[j]))
        if gnorm <= 0.0:  # gtol = 0
            return 4
        for j in range(n):
            diag[j] = max(diag[j], cnorm[j])
        while True:
            par = _lmpar(r, ipvt, diag, qtf, jtj, jtf, delta, par, step)
            for j in range(n):
                step[j] = -step[j]
                trial[j] = p[j] + step[j]
                wa3[j] = diag[j] * step[j]
            pnorm = _enorm(wa3)
            if it == 1:
                delta = min(delta, pnorm)
            fnorm1 = math.sqrt(_evaluate(x, y, trial, jtj1, jtf1))
            nfev += 1
            actred = -1.0
            if 0.1 * fnorm1 < fnorm:
                actred = 1.0 - (fnorm1 / fnorm) ** 2
            jp2 = 0.0  # ||J step||^2
            for k in range(n):
                for m in range(n):
                    jp2 += step[k] * jtj[k, m] * step[m]
            temp1 = math.sqrt(max(jp2, 0.0)) / fnorm
            temp2 = (math.sqrt(par) * pnorm) / fnorm
            prered = temp1 * temp1 + temp2 * temp2 / 0.5
            dirder = -(temp1 * temp1 + temp2 * temp2)
            ratio = 0.0
            if prered != 0.0:
                ratio = actred / prered
            if ratio <= 0.25:
                if actred >= 0.0:
                    temp = 0.5
                else:
                    temp = 0.5 * dirder / (dirder + 0.5 * actred)
                if 0.1 * fnorm1 >= fnorm or temp < 0.1:
                    temp = 0.1
                delta = temp * min(delta, pnorm / 0.1)
                par = par / temp
            elif par == 0.0 or ratio >= 0.75:
                delta = pnorm / 0.5
                par = 0.5 * par
            if ratio >= 1e-4:
                for j in range(n):
                    p[j] = trial[j]
                    wa3[j] = diag[j] * p[j]
                jtj[:, :] = jtj1
                jtf[:] = jtf1
                xnorm = _enorm(wa3)
                fnorm = fnorm1
                it += 1
            info = 0
            if abs(actred) <= _FTOL and prered <= _FTOL and 0.5 * ratio <= 1.0:
                info = 1
            if delta <= _XTOL * xnorm:
                info = 3 if info == 1 else 2
            if info != 0:
                return info
            if nfev >= _MAXFEV:
                info = 5
            if abs(actred) <= _EPSMCH and prered <= _EPSMCH and 0.5 * ratio <= 1.0:
                info = 6
            if delta <= _EPSMCH * xnorm:
                info = 7
            if gnorm <= _EPSMCH:
                info = 8
            if info != 0:
                return info
            if ratio >= 1e-4:
                break


@njit(cache=True, nogil=True, error_model="numpy")
def _initial_guess(axis, profile, p0):
    """cam_server's initial guesses into ``p0``; returns False if the profile has NaN/inf.

    offset = min, amplitude = max - offset, mean = axis[argmax],
    sigma = trapezoid(profile - offset, axis) / (amplitude sqrt(2 pi)) or 1 if amplitude is 0.
    Axis differences are taken in float32, as numpy does on the float32 axis.
    """
    n = profile.shape[0]
    finite = True
    lo = profile[0]
    hi = profile[0]
    imax = 0
    for i in range(n):
        v = profile[i]
        if not math.isfinite(v):
            finite = False
        if v < lo:
            lo = v
        if v > hi:
            hi = v
            imax = i
    amplitude = hi - lo
    sigma = 1.0
    if amplitude != 0.0:
        area = 0.0
        for i in range(n - 1):
            dx = float(np.float32(axis[i + 1] - axis[i]))
            area += dx * ((profile[i + 1] - lo) + (profile[i] - lo)) / 2.0
        sigma = area / (amplitude * _SQRT_2PI)
    p0[0] = lo
    p0[1] = amplitude
    p0[2] = float(axis[imax])
    p0[3] = sigma
    return finite


@njit(cache=True, nogil=True, error_model="numpy")
def _fit_gaussian(axis, profile, out):
    """Fit into ``out = [offset, amplitude, mean, sigma]``; returns True if the fit converged."""
    n = profile.shape[0]
    if n == 0:
        for k in range(4):
            out[k] = math.nan
        return False
    p0 = np.empty(4)
    finite = _initial_guess(axis, profile, p0)
    out[:] = p0
    if not finite:  # curve_fit refuses non-finite data; no meaningful guess either
        for k in range(4):
            out[k] = math.nan
        return False
    converged = False
    if n >= 4 and math.isfinite(p0[3]):
        x = np.empty(n)
        y = np.empty(n)
        for i in range(n):
            x[i] = float(axis[i])
            y[i] = float(np.float32(profile[i]))  # curve_fit gets profile.astype(float32)
        info = _lmdif(x, y, out)
        converged = 1 <= info <= 4
        if not converged:
            out[:] = p0
    out[3] = abs(out[3])
    return converged


# --------------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------------


def fit_gaussian(profile: np.ndarray, axis: np.ndarray) -> GaussianFit:
    """Fit cam_server's gaussian model to ``profile`` sampled at ``axis``.

    ``profile`` is any real array (int64 profiles are exact in float64 up to 2**53); ``axis``
    is converted to float32, the type of cam_server's axes, so that the initial guesses are
    computed as cam_server computes them. Never raises for data reasons: a failing fit returns
    the initial guesses with ``converged=False``.
    """
    prof = np.ascontiguousarray(profile, dtype=np.float64)
    ax = np.ascontiguousarray(axis, dtype=np.float32)
    if prof.shape != ax.shape or prof.ndim != 1:
        raise ValueError(f"profile {prof.shape} and axis {ax.shape} must be 1-D of equal length")
    out = np.empty(4)
    converged = bool(_fit_gaussian(ax, prof, out))
    return GaussianFit(float(out[0]), float(out[1]), float(out[2]), float(out[3]), converged)


def gaussian(axis: np.ndarray, fit: GaussianFit) -> np.ndarray:
    """The fitted curve on ``axis`` (float64), cam_server's ``*_fit_gauss_function``."""
    ax = np.ascontiguousarray(axis, dtype=np.float64)
    out = np.empty(ax.shape[0])
    gauss_evaluate(ax, fit.offset, fit.amplitude, fit.mean, fit.standard_deviation, out)
    return out


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(slope, offset)`` of ``y = slope * x + offset``; NaN if undetermined.

    Undetermined: fewer than two finite points or all x equal (curve_fit raises there).
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs = xs[keep]
    ys = ys[keep]
    if xs.size < 2:
        return math.nan, math.nan
    xm = xs.mean()
    ym = ys.mean()
    sxx = float(np.dot(xs - xm, xs - xm))
    if sxx == 0.0:
        return math.nan, math.nan
    slope = float(np.dot(xs - xm, ys - ym)) / sxx
    return slope, float(ym - slope * xm)
