"""Compare scenarios on common random numbers: deltas with paired errors, diffs, attribution.

Every scenario runs with the same seed, path count and sampling method, so path i of one
scenario and path i of another share their random numbers (exactly, when the scenarios have the
same set of uncertain inputs; otherwise the engine's market shocks are still shared). The
difference of two statistics is then estimated from paired samples, and its standard error is
that of the paired difference, usually far below that of either statistic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulator.analysis import decoupling, stats
from simulator.errors import RunError

_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SKIP = ("name", "description")  # labels, not assumptions


def paired_quantile_se(a: np.ndarray, b: np.ndarray, probs: Sequence[float],
                       n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """Bootstrap standard error of quantile(b) - quantile(a) over paired paths.

    Parameters
    ----------
    a, b : ndarray [path]
        The same paths under two settings [any common unit]; a path that is NaN in either is
        dropped from both.
    probs : sequence of float
        Quantile probabilities in (0, 1).
    n_boot : int
        Bootstrap resamples; the SE's own relative error is about 1 / sqrt(2 n_boot) (5 %).
    seed : int
        Seed of the resampling stream (fixed so a report renders the same twice).

    Returns
    -------
    ndarray [len(probs)]
        SE of each quantile difference; exactly 0 when ``a`` and ``b`` are equal.

    Notes
    -----
    Paths are resampled with replacement as pairs (a_i, b_i), keeping their dependence.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[ok], b[ok]
    if a.size < 2:
        return np.full(len(probs), np.nan)
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    diff = np.quantile(b[idx], probs, axis=1) - np.quantile(a[idx], probs, axis=1)
    return np.std(diff, axis=1, ddof=1)


def deltas(a: np.ndarray, b: np.ndarray, price: float | None) -> list[dict[str, Any]]:
    """Headline statistics of value per share in A and B, their difference and its paired SE.

    Returns
    -------
    list of dict
        {stat, a, b, delta, se}; ``stat`` in mean, P5, median, P95 [USD/share] and
        ``P(value > market)`` [1] when ``price`` is given.

    Notes
    -----
    SE(mean_b - mean_a) = sd(b_i - a_i) / sqrt(n); SE(p_b - p_a) = sd(1[b_i > c] - 1[a_i > c])
    / sqrt(n); quantile differences use :func:`paired_quantile_se`.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[ok], b[ok]
    n = a.size
    rows = [{"stat": "mean", "a": a.mean(), "b": b.mean(), "delta": b.mean() - a.mean(),
             "se": np.std(b - a, ddof=1) / np.sqrt(n)}]
    probs = [0.05, 0.5, 0.95]
    qa, qb = np.quantile(a, probs), np.quantile(b, probs)
    se = paired_quantile_se(a, b, probs)
    for p, x, y, s in zip(probs, qa, qb, se, strict=True):
        rows.append({"stat": "median" if p == 0.5 else f"P{round(p * 100)}", "a": x, "b": y,
                     "delta": y - x, "se": s})
    if price is not None:
        ia, ib = (a > price).astype(np.float64), (b > price).astype(np.float64)
        rows.append({"stat": "P(value > market)", "a": ia.mean(), "b": ib.mean(),
                     "delta": ib.mean() - ia.mean(), "se": np.std(ib - ia, ddof=1) / np.sqrt(n)})
    return [{k: (float(v) if k != "stat" else v) for k, v in r.items()} for r in rows]


def canonical(scenario: Any) -> dict[str, Any]:
    """The scenario as plain JSON-ready data with every default filled in (diffable)."""
    return scenario.model_dump(mode="json")


def scenario_from_cube(cube: Any) -> Any:
    """Rebuild the validated Scenario a cube was simulated from (attr ``scenario_yaml``)."""
    from simulator.scenario.models import Scenario

    raw = cube.attrs.get("scenario_yaml")
    try:
        return Scenario.model_validate(json.loads(raw))
    except Exception as exc:  # noqa: BLE001 - any failure means the run cannot be re-simulated
        raise RunError("the cube's scenario_yaml attribute does not hold a valid scenario "
                       f"({type(exc).__name__}); re-run it with minersim run") from exc


def flatten(doc: Any, prefix: str = "") -> dict[str, str]:
    """Key path -> compact JSON text of each leaf; named list items keyed by their name.

    A distribution (a mapping with ``dist``) is one leaf, so a changed triangular shows as one
    row. Lists of named items (sites, debt) become ``sites[texas].lease...``; other lists of
    mappings are indexed, and lists of numbers are leaves.
    """
    out: dict[str, str] = {}
    if isinstance(doc, Mapping) and "dist" not in doc:
        for key, val in doc.items():
            if key in _SKIP and (not prefix or prefix.endswith("]")):
                continue  # a label: top level, or the name already in a list item's key
            out.update(flatten(val, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(doc, list) and doc and all(isinstance(v, Mapping) for v in doc):
        for i, item in enumerate(doc):
            tag = item.get("name", i) if "dist" not in item else i
            out.update(flatten(item, f"{prefix}[{tag}]"))
    elif isinstance(doc, Mapping):
        out[prefix] = _dist_text(doc)
    else:
        out[prefix] = json.dumps(doc, sort_keys=True, default=str)
    return out


def _dist_text(spec: Mapping[str, Any]) -> str:
    """``triangular(low=45, mode=56, high=65) [source: C-F11]``: one distribution, compactly."""
    params = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in spec.items()
                       if k not in ("dist", "source", "assumption") and v is not None)
    text = f"{spec['dist']}({params})"
    source = spec.get("source")
    if isinstance(source, Mapping):  # {id, as_of, url}: the ids, and the date if given
        source = source.get("id", "") + (f" as of {source['as_of']}" if source.get("as_of") else "")
    if source:
        text += f" [source: {source}]"
    return text + (" [assumption]" if spec.get("assumption") else "")


def assumption_diff(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows {key, values} for every key path whose value differs between the scenarios.

    A key missing from a scenario shows as ``None`` in ``values``.
    """
    flat = [flatten(d) for d in docs]
    keys = sorted(set().union(*flat))
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if len(set(values)) > 1:
            rows.append({"key": key, "values": values})
    return rows


def groups(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Input groups that differ between canonical docs, in B's order.

    A group is a top-level section (``market``, ``company``, ...) or one site
    (``sites[texas]``), the unit an analyst would switch as a whole.
    """
    out = []
    for key in list(b) + [k for k in a if k not in b]:
        if key in _SKIP or key in out:
            continue
        if key == "sites":
            sa, sb = _sites(a), _sites(b)
            out += [f"sites[{n}]" for n in list(sb) + [n for n in sa if n not in sb]
                    if sa.get(n) != sb.get(n)]
        elif a.get(key) != b.get(key):
            out.append(key)
    return out


def _sites(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {s["name"]: s for s in doc.get("sites") or []}


def apply_group(doc: dict[str, Any], b: Mapping[str, Any], group: str) -> dict[str, Any]:
    """A copy of ``doc`` with ``group`` taken from ``b`` (sites ordered as in ``b``)."""
    out = json.loads(json.dumps(doc))
    if not group.startswith("sites["):
        if group in b:
            out[group] = json.loads(json.dumps(b[group]))
        else:
            out.pop(group, None)
        return out
    name = group[len("sites["):-1]
    cur, new = _sites(out), _sites(b)
    if name in new:
        cur[name] = json.loads(json.dumps(new[name]))
    else:
        cur.pop(name, None)
    order = [n for n in new if n in cur] + [n for n in cur if n not in new]
    out["sites"] = [cur[n] for n in order]
    return out


def attribution(scen_a: Any, scen_b: Any, *, paths: int, seed: int, sampling: str,
                start: np.ndarray, end: np.ndarray, client: Any = None,
                processes: int | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Step from A to B one changed input group at a time; median value per share per step.

    Parameters
    ----------
    scen_a, scen_b : Scenario
    paths, seed, sampling :
        The common settings of the comparison.
    start, end : ndarray [path]
        Value per share [USD/share] of A and of B at those settings.
    progress : callable(label, done, total), optional
        Called after each chunk of each step's simulation, ``label`` naming the step.

    Returns
    -------
    dict
        ``steps``: [{group, median, move}] where ``move`` is the change in median value per
        share [USD/share] from the previous step; ``start``, ``end``, ``total`` (= end -
        start); ``residual`` = last step's median - B's median (0 when the steps reach B).

    Notes
    -----
    The moves telescope: sum(move) = median(last step) - median(A), which equals the total
    delta when the last step is B. The split depends on the order of the groups (B's order);
    interactions land in whichever step comes second. A group that cannot stand alone (the
    merged scenario fails validation, e.g. a correlation naming an input another group
    makes uncertain) is merged with the next one.
    """
    from simulator.scenario.models import Scenario
    from simulator.run import simulate

    a, b = canonical(scen_a), canonical(scen_b)
    doc, prev = a, float(np.nanmedian(start))
    steps, pending = [], []
    for group in groups(a, b):
        doc = apply_group(doc, b, group)
        pending.append(group)
        try:
            scen = Scenario.model_validate(doc)
        except Exception:  # noqa: BLE001 - invalid on its own: merge with the next group
            continue
        tick = _labelled(progress, "attribution: + " + " + ".join(pending))
        cube = simulate(scen, paths, seed, sampling, store_paths=0, client=client,
                        processes=processes, progress=tick)
        med = float(np.nanmedian(cube["value_per_share"].values))
        steps.append({"group": " + ".join(pending), "median": med, "move": med - prev})
        prev, pending = med, []
    if pending:
        raise RunError(f"attribution: scenario B does not validate after {pending}")
    a_med, b_med = float(np.nanmedian(start)), float(np.nanmedian(end))
    return {"steps": steps, "start": a_med, "end": b_med, "total": b_med - a_med,
            "residual": prev - b_med}


def load_source(source: str | Path) -> tuple[Any, Any]:
    """(Scenario, saved cube or None) for a scenario file, shipped name, run dir or .nc file."""
    from simulator import cube as cube_mod
    from simulator.scenario import load

    path = Path(source)
    if path.is_dir() or path.suffix == ".nc":
        nc = path / "results.nc" if path.is_dir() else path
        saved = cube_mod.load(nc)
        return scenario_from_cube(saved), saved
    return load(source).scenario, None


def compare(sources: Sequence[str | Path], *, paths: int | None = None, seed: int | None = None,
            sampling: str | None = None, attribute: bool = True,
            client: Any = None, processes: int | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Simulate (or reuse) every scenario on common random numbers and compare them to A.

    Parameters
    ----------
    sources : sequence of str or Path
        Scenario files, shipped names, run directories or ``results.nc`` files; the first
        is A, the baseline.
    paths, seed, sampling : optional
        Common settings; default to A's (its saved run's, or its scenario's). A saved run
        is reused only if it was made with exactly these settings, else it is re-simulated.
    attribute : bool
        Also step from A to B one input group at a time (one simulation per group).
    client, processes : optional
        Where the simulations run (see :func:`simulator.run.simulate`); the numbers do not
        depend on it.
    progress : callable(label, done, total), optional
        Called after each chunk of each simulation, ``label`` naming the scenario ("B: bear")
        or the attribution step; a saved run used as saved reports nothing.

    Returns
    -------
    dict
        ``labels`` ("A: base", ...), ``scenarios``, ``cubes``, ``values`` (value per share
        per scenario), ``price`` (A's market price), ``summaries``, ``deltas`` [{label,
        rows}] of each later scenario against A, ``diff`` (see :func:`assumption_diff`),
        ``attribution`` (A to B, or None), ``beta`` (:func:`decoupling.btc_beta` of each),
        ``paths``, ``seed``, ``sampling``, ``reused`` (labels of saved runs used as saved).
    """
    from simulator.run import simulate

    if len(sources) < 2:
        raise RunError(f"compare needs at least two scenarios or runs (got {len(sources)})")
    if len(sources) > len(_LABELS):
        raise RunError(f"compare takes at most {len(_LABELS)} scenarios (got {len(sources)})")
    loaded = [load_source(s) for s in sources]
    first_scen, first_cube = loaded[0]
    attrs = first_cube.attrs if first_cube is not None else {}
    sim = first_scen.simulation
    paths = int(paths or attrs.get("paths", sim.paths))
    seed = int(seed if seed is not None else attrs.get("seed", sim.seed))
    sampling = sampling or str(attrs.get("sampling", sim.sampling))
    labels = [f"{_LABELS[i]}: {scen.name}" for i, (scen, _) in enumerate(loaded)]
    cubes, reused = [], []
    for label, (scen, saved) in zip(labels, loaded, strict=True):
        if saved is not None and _same_settings(saved, paths, seed, sampling):
            cubes.append(saved)
            reused.append(label)
        else:
            cubes.append(simulate(scen, paths, seed, sampling, client=client, processes=processes,
                                  progress=_labelled(progress, label)))
    values = [np.asarray(c["value_per_share"].values, dtype=np.float64) for c in cubes]
    price = float(first_scen.company.share_price_usd)
    out: dict[str, Any] = {
        "labels": labels, "scenarios": [s for s, _ in loaded], "cubes": cubes, "values": values,
        "price": price, "paths": paths, "seed": seed, "sampling": sampling, "reused": reused,
        "summaries": [stats.summary(v, threshold=price) for v in values],
        "deltas": [{"label": lab, "rows": deltas(values[0], v, price)}
                   for lab, v in zip(labels[1:], values[1:], strict=True)],
        "diff": assumption_diff([canonical(s) for s, _ in loaded]),
        "beta": [decoupling.btc_beta(c) for c in cubes],
    }
    out["attribution"] = (attribution(loaded[0][0], loaded[1][0], paths=paths, seed=seed,
                                      sampling=sampling, start=values[0], end=values[1],
                                      client=client, processes=processes, progress=progress)
                          if attribute else None)
    return out


def _labelled(progress: Callable[[str, int, int], None] | None,
              label: str) -> Callable[[int, int], None] | None:
    """A ``simulate`` progress callback that reports ``label`` with each chunk."""
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)


def _same_settings(cube: Any, paths: int, seed: int, sampling: str) -> bool:
    a = cube.attrs
    overrides = a.get("overrides", "{}")
    return (int(a.get("paths", -1)) == paths and int(a.get("seed", -1)) == seed
            and str(a.get("sampling")) == sampling and overrides in ("{}", {}, None))
