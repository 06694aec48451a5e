"""Per-path draws of the uncertain scenario inputs.

Unit hypercube (random, Latin hypercube or scrambled Sobol) -> optional Gaussian copula
for target rank correlations -> each column through its distribution's ``ppf``. Every step
is row-wise or keyed by 1,024-path blocks (see :mod:`simulator.rng`), so any chunk split
of the paths gives bit-identical inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy.stats import qmc

from simulator.errors import ScenarioError
from simulator.rng import BLOCK_PATHS, Draws, block_generator

__all__ = ["METHODS", "sample_inputs", "spearman_to_pearson", "unit_hypercube"]

METHODS = ("random", "latin_hypercube", "sobol")

_EPS = 1e-12
"""Clip margin for u, so that ppf of unbounded distributions stays finite."""


def spearman_to_pearson(rho_s: np.ndarray | float) -> np.ndarray:
    """Pearson correlation of a Gaussian copula that has Spearman correlation ``rho_s``.

    Parameters
    ----------
    rho_s : array_like
        Target Spearman rank correlation(s) in [-1, 1] (a matrix keeps its unit diagonal).

    Returns
    -------
    numpy.ndarray
        ``rho_p = 2 sin(pi rho_s / 6)``.

    Notes
    -----
    For a bivariate normal, ``rho_s = (6/pi) arcsin(rho_p / 2)`` (Kruskal 1958); this is
    the inverse. Ranks are invariant under each marginal ``ppf``, so the target holds for
    any continuous marginals.
    """
    rho_s = np.asarray(rho_s, dtype=np.float64)
    rho_p = 2.0 * np.sin(np.pi * rho_s / 6.0)
    if rho_p.ndim == 2:
        # 2 sin(pi/6) rounds to 0.9999999999999999; a correlation matrix needs exact ones.
        np.fill_diagonal(rho_p, 1.0)
    return rho_p


def unit_hypercube(
    d: int,
    *,
    method: Literal["random", "latin_hypercube", "sobol"],
    seed: int,
    start: int,
    stop: int,
    n_total: int,
    keys: tuple[str, ...] | None = None,
    prefix: str = "",
    after: int = 0,
) -> np.ndarray:
    """Points in (0, 1)^d for paths ``[start, stop)`` of ``n_total``.

    Parameters
    ----------
    d : int
        Dimension (number of uncertain inputs).
    method : {"random", "latin_hypercube", "sobol"}
        ``random``: independent uniforms, one stream per input key (``"inputs:<key>"``),
        so adding or fixing one input leaves the others' draws unchanged (common random
        numbers for tornado runs). ``latin_hypercube``: one scipy LatinHypercube design
        per 1,024-path block (the last block is sized to end at ``n_total``), seeded from
        stream ``"inputs-lhs"``. ``sobol``: one scrambled Sobol sequence over all paths,
        seeded from stream ``"inputs-sobol"`` block 0, fast-forwarded to ``start``.
    seed : int
        Run seed.
    start, stop, n_total : int
        Chunk slice and total path count.
    keys : tuple of str, optional
        Input names, used by ``random`` to name streams (defaults to column numbers).
    prefix : str
        Put before every stream name (``"inputs:<prefix><key>"``, ``"<prefix>inputs-lhs"``,
        ``"<prefix>inputs-sobol"``): a company's own inputs are drawn from streams of its own.
    after : int
        ``sobol`` only: the columns are dimensions ``after .. after + d - 1`` of the sequence
        (the company's come after the world's ``after`` dimensions). Two scrambled Sobol
        sequences' first dimensions are the same van der Corput points in another order, far
        from independent; later dimensions of a sequence scrambled on its own keep the joint
        balance of one sequence of ``after + d`` dimensions.

    Returns
    -------
    numpy.ndarray
        float64 ``[stop-start, d]``, clipped into ``[1e-12, 1 - 1e-12]``.
    """
    if not 0 <= start < stop <= n_total:
        raise ValueError(f"need 0 <= start < stop <= n_total (got {start}, {stop}, {n_total})")
    n = stop - start
    if method == "random":
        keys = keys if keys is not None else tuple(str(i) for i in range(d))
        draws = Draws(seed, start, stop, 1)
        u = np.empty((n, d), dtype=np.float64)
        for j, key in enumerate(keys):
            u[:, j] = draws.uniform(f"inputs:{prefix}{key}", cols=1)[:, 0]
    elif method == "latin_hypercube":
        u = _lhs(d, seed, start, stop, n_total, f"{prefix}inputs-lhs")
    elif method == "sobol":
        engine = qmc.Sobol(after + d, scramble=True, rng=block_generator(seed, f"{prefix}inputs-sobol", 0))
        with warnings.catch_warnings():
            # Chunks are not powers of two; balance holds over the whole run, not per chunk.
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol.*")
            if start:
                engine.fast_forward(start)
            u = engine.random(n)[:, after:]
    else:
        raise ValueError(f"unknown sampling method {method!r} (allowed: {', '.join(METHODS)})")
    return np.clip(u, _EPS, 1.0 - _EPS, out=u)


def _lhs(d: int, seed: int, start: int, stop: int, n_total: int, stream: str) -> np.ndarray:
    """Latin hypercube rows ``[start, stop)``, one full design per block of ``stream``."""
    out = np.empty((stop - start, d), dtype=np.float64)
    for block in range(start // BLOCK_PATHS, (stop - 1) // BLOCK_PATHS + 1):
        b0 = block * BLOCK_PATHS
        size = min(BLOCK_PATHS, n_total - b0)
        design = qmc.LatinHypercube(d, rng=block_generator(seed, stream, block)).random(size)
        lo, hi = max(start, b0), min(stop, b0 + size)
        out[lo - start : hi - start] = design[lo - b0 : hi - b0]
    return out


def sample_inputs(
    dists: Mapping[str, Any],
    *,
    method: Literal["random", "latin_hypercube", "sobol"] = "random",
    seed: int,
    start: int,
    stop: int,
    n_total: int,
    corr: np.ndarray | None = None,
    company: str = "",
) -> dict[str, np.ndarray]:
    """Sample every uncertain input for paths ``[start, stop)``.

    Parameters
    ----------
    dists : mapping of str to distribution
        Input key path -> frozen ``scipy.stats`` distribution, or any object with a
        vectorised ``ppf(u)``. Rows and columns of ``corr`` follow this mapping's order.
    method : {"random", "latin_hypercube", "sobol"}
        How the unit hypercube is filled (see :func:`unit_hypercube`).
    seed : int
        Run seed.
    start, stop, n_total : int
        Chunk slice ``[start, stop)`` of ``n_total`` paths.
    corr : numpy.ndarray, optional
        ``[d, d]`` target Spearman rank-correlation matrix (validated upstream).
    company : str
        The company's ticker, which names the streams of its own inputs (``company`` if empty).

    Returns
    -------
    dict of str to numpy.ndarray
        Input key -> ``[stop-start]`` array of draws (each dist's ``ppf`` output dtype).

    Notes
    -----
    The world's inputs (:func:`~simulator.scenario.universe.is_world_key`: market, network,
    valuation) and the company's are two separate hypercubes, the company's drawn from streams
    its ticker names; correlations between them condition the company's inputs on the world's,
    never the reverse. So the world's draws are the same, bit for bit, whatever company they
    are sampled with, and two companies' own inputs are independent unless correlated: the peer
    group's shared world.

    Gaussian copula: ``R = 2 sin(pi C / 6)``, ``R = L L^T`` (Cholesky),
    ``z = Phi^-1(u) L^T``, ``u' = Phi(z)``, ``x_j = F_j^-1(u'_j)``. The transform is
    row-wise, so it keeps chunk invariance. Only the inputs whose row of ``L`` has an entry
    off the diagonal are transformed. Under LHS and Sobol the others keep exact
    stratification; the rest keep exact marginals.
    """
    from simulator.scenario.universe import is_world_key

    keys = tuple(dists)
    if not keys:
        return {}
    world = [i for i, key in enumerate(keys) if is_world_key(key)]
    own = [i for i, key in enumerate(keys) if not is_world_key(key)]
    order = world + own
    u = np.empty((stop - start, len(keys)), dtype=np.float64)
    kw = {"method": method, "seed": seed, "start": start, "stop": stop, "n_total": n_total}
    if world:
        u[:, :len(world)] = unit_hypercube(len(world), keys=tuple(keys[i] for i in world), **kw)
    if own:
        u[:, len(world):] = unit_hypercube(len(own), keys=tuple(keys[i] for i in own),
                                           prefix=f"{company or 'company'}/", after=len(world), **kw)
    if corr is not None:
        corr = np.asarray(corr, dtype=np.float64)[np.ix_(order, order)]
        u = _gaussian_copula(u, corr, tuple(keys[i] for i in order), len(world))
    out = {}
    for j, i in enumerate(order):
        key = keys[i]
        values = np.asarray(dists[key].ppf(u[:, j]))
        if values.shape != (stop - start,):
            raise ValueError(f"ppf of input {key!r} returned shape {values.shape}, "
                             f"expected ({stop - start},)")
        out[key] = values
    return {key: out[key] for key in keys}


def _gaussian_copula(u: np.ndarray, corr: np.ndarray, keys: tuple[str, ...], n_world: int = 0) -> np.ndarray:
    """Impose the rank correlation ``corr`` on independent uniforms ``u`` (row-wise, in place).

    The first ``n_world`` columns are the world's: their rows of the Cholesky factor come from
    the world's block of ``corr`` alone (the leading block of a Cholesky factor is the factor
    of the leading block), so they are the same numbers whatever company columns follow. A
    column whose row of the factor is the unit row (no correlation, or correlated only with
    later columns) is left as drawn: its ``Phi(Phi^-1(u))`` is ``u`` itself, and the round trip
    would only add rounding. The product with the factor is written as a sum over its entries,
    column by column, so that each path's numbers are the same whatever the chunk size.
    """
    d = len(keys)
    if corr.shape != (d, d):
        raise ValueError(f"corr has shape {corr.shape}, expected ({d}, {d}) for inputs {keys}")
    linked = np.flatnonzero((corr != np.eye(d)).any(axis=0))
    try:
        # The full matrix is positive definite iff its linked block is (identity elsewhere).
        chol = np.linalg.cholesky(spearman_to_pearson(corr[np.ix_(linked, linked)]))
        w = int((linked < n_world).sum())
        if w:
            chol[:w, :w] = np.linalg.cholesky(spearman_to_pearson(corr[np.ix_(linked[:w], linked[:w])]))
    except np.linalg.LinAlgError:
        raise ScenarioError(
            "correlation matrix is not positive definite after the Spearman-to-Pearson "
            "conversion", key_path="correlations", allowed="a positive definite matrix",
            hint="weaken the largest correlations") from None
    z_in = special.ndtri(u[:, linked])
    for j, col in enumerate(linked):
        if not chol[j, :j].any():
            continue
        z = z_in[:, 0] * chol[j, 0]
        for m in range(1, j + 1):
            z += z_in[:, m] * chol[j, m]
        u[:, col] = np.clip(special.ndtr(z), _EPS, 1.0 - _EPS)
    return u
