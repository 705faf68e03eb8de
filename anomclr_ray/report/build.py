"""Study reports read from MLflow (never from in-memory state): what a physicist looks at.

`build_report(uri, experiment, out_dir)` reads the trial runs of one execution of the study (its
latest parent run, or the executions named; with several tracking stores, one execution of each,
merged: a study run in parts on several clusters) and lays the report out as the execution's recorded
study config says (a search or a grid; a run without that record is judged by what its trials vary). It writes
`report.md` (summary, best trial, per-method tables as in the paper's Table 2, the figures, all
trials), `trials.csv` (one row per trial: params, latest metrics), and figures: `by_<param>.png` bars
per value of a varied categorical parameter such as the augmentation mix (Fig. 2), `vs_<param>.png`
for a varied number such as the representation dimension (Fig. 3), `roc.png` / `si.png` for the best
trial of each method, `nplm_power.png` (NPLM's P(Z > 3) against the injected fraction) when the trials
ran `score.nplm`, `ranking.png` and a table of how well each signal-free objective (and the validation
AUC) ranks the trials by their test AUC. It works on a study still running: figures use the trials that
have finished their budget, the tables say how many are still going.

Error bars: the std over the trials of a group (seeds); a group of one trial shows the std over its
AE seeds.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError
from ..events import layout as L
from ..method.augment import mixes
from ..method.metrics import EPS_S, load_curves, metric_label
from ..method.names import (BASELINE, EPS_S_KEY, MEAN, METHOD_KEY, NPLM_POWER, PROBE_ACCURACY, PROXY_DEFAULT, PROXY_METRICS,
                    SIGNAL_METRICS, applies, check_objective, mean_metrics, methods, method_color, method_label, metric_key,
                    parse_nplm_key, parse_proxy_key, proxy_key)
from ..nplm import POWER_RANGE
from .figures import AXIS_LABELS, lighter, metrics_table, plot_bars, plot_curves, plot_lines, plot_ranking, plot_search, plot_versus
from .tracking import CURVES_FILE, STUDY_CONFIG_FILE, STUDY_TAG, TRIAL_TAG, client

SEEDS = ("train.seed",)  # replicas, not ablation axes


@dataclass(frozen=True)
class Trial:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    source: str = ""  # the tracking URI it was read from (its artifacts are there)

    @property
    def method(self) -> str:
        return self.params.get(METHOD_KEY, self.params.get("train.loss", "?"))

    @property
    def complete(self) -> bool:
        """Evaluated after its whole training budget (ASHA-stopped and running trials are not)."""
        if "epoch" in self.metrics and "train.epochs" in self.params:
            return self.metrics["epoch"] >= float(self.params["train.epochs"])
        return self.status == "FINISHED"

    @property
    def progress(self) -> str:
        """"yes", or how far it got: "no (epoch 2 of 6)" (stopped early by ASHA, or still running)."""
        if self.complete:
            return "yes"
        if "epoch" in self.metrics and "train.epochs" in self.params:
            return f"no (epoch {self.metrics['epoch']:g} of {self.params['train.epochs']})"
        return f"no ({self.status.lower()})"


LATEST, ALL = "latest", "all"  # which executions (parent runs) of a study a report reads


@dataclass(frozen=True)
class Execution:
    """One execution of a study: its MLflow parent run, and the study config it recorded (plain data)."""

    run_id: str
    name: str
    source: str
    study: dict | None  # study.yaml; None for a run logged without it


def _experiment(c, uri: str, experiment: str):
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(sorted(e.name for e in c.search_experiments())) or "none"
        raise ConfigError(f"MLflow experiment {experiment!r} not found in {uri} (experiments there: {names})")
    return exp


def _all_runs(c, exp_id: str) -> list:
    runs, token = [], None
    while True:
        page = c.search_runs([exp_id], max_results=1000, page_token=token, order_by=["attributes.start_time ASC"])
        runs += page
        token = page.token
        if not token:
            return runs


def _study_record(c, run_id: str) -> dict | None:
    if STUDY_CONFIG_FILE not in {a.path for a in c.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return yaml.safe_load(Path(c.download_artifacts(run_id, STUDY_CONFIG_FILE, tmp)).read_text())


def read_study(uri: str, experiment: str, executions: str | list[str] = LATEST) -> tuple[list[Execution], list[Trial]]:
    """(the executions read, their trial runs oldest first): `LATEST` (the newest parent run that has
    trials), `ALL`, or the parent run ids given. A trial run belongs to the parent run it is nested in;
    a run that is neither (an export's) is not read."""
    c = client(uri)
    runs = _all_runs(c, _experiment(c, uri, experiment).experiment_id)
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags and STUDY_TAG in r.data.tags}
    trials = [r for r in runs if TRIAL_TAG in r.data.tags]
    if executions == LATEST:
        with_trials = [p for p in parents.values() if any(t.data.tags["mlflow.parentRunId"] == p.info.run_id for t in trials)]
        chosen = [max(with_trials or parents.values(), key=lambda r: r.info.start_time).info.run_id] if parents else []
    elif executions == ALL:
        chosen = list(parents)
    else:
        if unknown := [e for e in executions if e not in parents]:
            raise ConfigError(f"MLflow experiment {experiment!r} in {uri}: no execution (parent run) {', '.join(unknown)}; "
                              f"it has {', '.join(parents) or 'none'}")
        chosen = list(executions)
    read = [Execution(i, parents[i].info.run_name, uri, _study_record(c, i)) for i in chosen]
    return read, [Trial(r.info.run_id, r.info.run_name, r.info.status, dict(r.data.params), dict(r.data.metrics), uri)
                  for r in trials if r.data.tags["mlflow.parentRunId"] in chosen]


def read_trials(uri: str, experiment: str, executions: str | list[str] = LATEST) -> list[Trial]:
    """The trial runs of the study's latest execution (or of the `executions` given, see `read_study`)."""
    return read_study(uri, experiment, executions)[1]


def is_search(executions: list[Execution], trials: list[Trial]) -> bool:
    """Whether the study searched (TPE, or sampled domains) rather than ran a grid: as its recorded
    config says, else (no record) when more than two params other than the method and seeds vary."""
    if recorded := [e.study for e in executions if e.study]:
        return any(r.get("search") == "tpe" or any("grid" not in spec for spec in (r.get("search_space") or {}).values())
                   for r in recorded)
    return len([a for a in varying(trials) if a not in SEEDS and a != METHOD_KEY]) > 2


def varying(trials: list[Trial]) -> list[str]:
    """Params with more than one value among the trials (the study's axes), `method` first."""
    keys = sorted({k for t in trials for k in t.params} - {"train.loss"})  # train.loss: `method` says it
    out = [k for k in keys if len({t.params.get(k) for t in trials}) > 1]
    return sorted(out, key=lambda k: (k != METHOD_KEY, k))


def within_a_method(trials: list[Trial], key: str) -> bool:
    """Whether `key` takes several values among the trials of one method: an axis of the study, not a
    setting that comes with the method (`StudyConfig.method_settings`: each method its own dimension)."""
    return any(len({t.params.get(key) for t in trials if t.method == m}) > 1 for m in {t.method for t in trials})


def group_summary(trials: list[Trial], key: str) -> dict[str, dict[str, dict[str, float]]]:
    """{value of key: {signal: {metric: mean, metric_std: std}}} over the trials with that value."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        groups.setdefault(t.params.get(key, "?"), []).append(t)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for value, members in groups.items():
        out[value] = {}
        for sig in L.SIGNALS:
            if metric_key("auc", sig) not in members[0].metrics:
                continue
            out[value][sig] = {}
            for m in SIGNAL_METRICS:
                v = np.array([t.metrics.get(metric_key(m, sig), np.nan) for t in members])
                std = v.std() if len(v) > 1 else members[0].metrics.get(metric_key(m, sig, std=True), 0.0)
                out[value][sig] |= {m: float(v.mean()), f"{m}_std": float(std), "n": len(v)}
    return out


def _as_number(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _method_order(summaries: dict) -> dict:
    order = list(methods())
    return dict(sorted(summaries.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _best_curves(trials: list[Trial], metric: str, tmp: Path) -> dict[str, dict]:
    """ROC curves per signal of the best trial of each method (from its curves.npz artifact)."""
    best: dict[str, Trial] = {}
    for t in trials:
        if metric in t.metrics and (t.method not in best or t.metrics[metric] > best[t.method].metrics[metric]):
            best[t.method] = t
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    curves = {}
    for method, t in _method_order(best).items():
        c = client(t.source)
        if CURVES_FILE not in {a.path for a in c.list_artifacts(t.run_id)}:
            continue  # a trial logged by an older version has no curves
        curves[method] = load_curves(c.download_artifacts(t.run_id, CURVES_FILE, str(tmp)))
    return curves


def write_csv(trials: list[Trial], path: Path) -> Path:
    import pandas as pd

    rows = [{"run_id": t.run_id, "run_name": t.name, "status": t.status, "complete": t.complete,
             **{f"params.{k}": v for k, v in t.params.items()}, **{f"metrics.{k}": v for k, v in t.metrics.items()}}
            for t in trials]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _trials_table(trials: list[Trial], axes: list[str], metric: str) -> str:
    signals = [s for s in L.SIGNALS if any(metric_key("auc", s) in t.metrics for t in trials)]
    means = {metric_key(m, MEAN): f"{SIGNAL_METRICS[m].short} mean" for m in mean_metrics()}
    means.setdefault(metric, metric)  # the study's objective gets a column too (e.g. val_auc/mean)
    head = ["trial", "complete", *axes, *(f"AUC {L.SIGNAL_TEXT[s]}" for s in signals), *means.values()]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for t in sorted(trials, key=lambda t: -t.metrics.get(metric, -np.inf)):
        cells = [t.name, t.progress,
                 *(t.params.get(a, "") if applies(t.method, a) else "—" for a in axes),
                 *(f"{t.metrics[k]:.3f}" if (k := metric_key("auc", s)) in t.metrics else "—" for s in signals),
                 *(f"{t.metrics[k]:.3f}" if k in t.metrics else "—" for k in means)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def eps_s_of(trials: list[Trial]) -> float:
    """The signal efficiency the trials took SI and eps_B at (their `eps_s` param; older runs: the default)."""
    values = {float(t.params.get(EPS_S_KEY, EPS_S)) for t in trials}
    if len(values) > 1:
        raise ConfigError(f"the trials took SI at different signal efficiencies ({sorted(values)}): one study, one eps_s")
    return values.pop() if values else EPS_S


def _method_section(done: list[Trial], eps_s: float) -> list[str]:
    by_method = _method_order(group_summary(done, METHOD_KEY))
    n_per = ", ".join(f"{method_label(m)} {next(iter(v.values()))['n']}" for m, v in by_method.items())
    return ["## Per method (Table 2)", "", f"Mean ± std over trials (trials per method: {n_per}).", "",
            *(line for m in mean_metrics() for line in (metric_label(m, eps_s, latex=False), "",
                                                      metrics_table(by_method, m), ""))]


def _search_section(trials: list[Trial], params: list[str], metric: str, out: Path) -> list[str]:
    points = {a: [(t.params[a], t.metrics[metric], t.complete) for t in trials if metric in t.metrics]
              for a in [METHOD_KEY, *params]}
    plot_search(points, out / "search.png", metric)
    return ["## Search", "", f"{metric} of every trial (last evaluation) against each parameter.", "",
            "![search](search.png)", ""]


def _axis_section(done: list[Trial], axis: str, others: list[str], out: Path, eps_s: float) -> list[str]:
    """Fig. 2 bars for a categorical parameter, Fig. 3 lines for a number with more than two values;
    the study's AE-Raw trials (no encoder: `axis` does not apply to them) as the reference line."""
    baseline = [t for t in done if t.method == BASELINE]
    summaries = group_summary([t for t in done if t.method != BASELINE], axis)
    reference = group_summary(baseline, METHOD_KEY).get(BASELINE) if baseline else None
    numbers = _as_number(list(summaries))
    label = AXIS_LABELS.get(axis, axis)
    if numbers is not None and len(numbers) > 2:
        positive = min(numbers) > 0 and max(numbers) / min(numbers) >= 8
        path = plot_versus(dict(zip(numbers, summaries.values())), out / f"vs_{axis}.png", label, mean_metrics(),
                           positive, reference, eps_s)
    else:
        path = plot_bars(summaries, out / f"by_{axis}.png", f"by {label}", mean_metrics(), reference, eps_s)
    note = f" Averaged over the other varied parameters ({', '.join(others)})." if others else ""
    ref_note = (f" Dashed: {method_label(BASELINE)} ({len(baseline)} trial{'s' * (len(baseline) != 1)}), which has "
                f"no encoder, so `{axis}` does not apply to it." if baseline else "")
    table = {**summaries, **({BASELINE: reference} if reference else {})}
    return [f"## By `{axis}`", "", f"Mean ± std over trials.{note}{ref_note}", "", f"![{axis}]({path.name})", "",
            metrics_table(table, "auc", axis), ""]


def _comparison_section(done: list[Trial], axis: str, groups: list[str], out: Path, eps_s: float) -> list[str]:
    """Each metric against a number (e.g. the embedding dimension), one line per combination of the
    other axes (e.g. method x encoder; the colour is the method's, the line style the encoder's), the
    AE-Raw trials as the reference; AUC and SI per signal, and the linear probe's accuracy."""
    baseline = [t for t in done if t.method == BASELINE]
    combos: dict[str, list[Trial]] = {}
    for t in sorted((t for t in done if t.method != BASELINE), key=lambda t: [_sortable(t.params[g]) for g in groups]):
        combos.setdefault(" · ".join(_group_label(g, t.params[g]) for g in groups), []).append(t)
    styles = line_styles(combos, done)
    signals = [s for s in L.SIGNALS if any(metric_key("auc", s) in t.metrics for t in done)]
    label, md = AXIS_LABELS.get(axis, axis), [f"## Against `{axis}`", ""]
    for metric, title in (*((m, metric_label(m, eps_s, latex=False)) for m in mean_metrics()),
                          (PROBE_ACCURACY, "linear-probe accuracy")):
        keys = {PROBE_ACCURACY: "process labels"} if metric == PROBE_ACCURACY else \
            {metric_key(metric, s): L.SIGNAL_LATEX[s] for s in signals}
        if not any(k in t.metrics for t in done for k in keys):
            continue
        lines = {name: _by_number(members, axis, keys) for name, members in combos.items()}
        reference = {k: _mean_std([t.metrics[k] for t in baseline if k in t.metrics]) for k in keys} if baseline else None
        name = f"cmp_{metric.replace('/', '_')}.png"
        plot_lines(lines, keys, out / name, label, title, styles, {k: v for k, v in (reference or {}).items() if v})
        md += [f"![{title} against {axis}]({name})", ""]
    md.append("Mean ± std over the trials of each point (seeds)"
              + (f"; dashed: {method_label(BASELINE)}, which has no encoder." if baseline else "."))
    return md + [""]


def _sortable(value: str) -> tuple[int, float | str]:
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def _group_label(key: str, value: str) -> str:
    """How a line names its value of `key`: a method's label, an encoder kind as it is, else `key`'s
    field and the value (`epochs 20`)."""
    if key == METHOD_KEY:
        return method_label(value)
    return value if key == "model.kind" else f"{key.rpartition('.')[2]} {value}"


def line_styles(combos: dict[str, list[Trial]], trials: list[Trial]) -> dict[str, tuple[str, str]]:
    """(colour, line style) per line: its method's colour and its encoder's line style (`_style`); lines
    that would still look alike (one per epochs value, say) get lighter shades of the colour, in order."""
    styles, alike = {}, {}
    for i, (label, members) in enumerate(combos.items()):
        colour, line = _style(members[0], trials, i)
        shade = alike[colour, line] = alike.get((colour, line), -1) + 1
        styles[label] = (lighter(colour, 0.3 * shade), line)
    return styles


def _style(trial: Trial, trials: list[Trial], i: int) -> tuple[str, str]:
    """A line's (colour, line style): the method's colour, a line style per encoder kind among `trials`."""
    kinds = sorted({t.params.get("model.kind", "") for t in trials})
    return method_color(trial.method, f"C{i}"), ("-", "--", ":")[kinds.index(trial.params.get("model.kind", "")) % 3]


def _nplm_groups(done: list[Trial], axes: list[str]) -> dict[str, list[Trial]]:
    """The trials by method x the study's other axes (seeds pooled), labelled "SupCon · embedding_dim=4 ·
    kind=mlp"."""
    groups: dict[str, list[Trial]] = {}
    for t in done:
        label = " · ".join([method_label(t.method), *(f"{a.partition('.')[2] or a}={t.params[a]}" for a in axes
                                                       if a not in (*SEEDS, METHOD_KEY) and applies(t.method, a))])
        groups.setdefault(label, []).append(t)
    return groups


Series = dict[str, dict[float, dict[str, float]]]


def nplm_lines(done: list[Trial], axes: list[str]) -> tuple[Series, dict[str, tuple[str, str]]]:
    """The NPLM figure's lines, one per method x the study's other axes (seeds pooled) that logged a power:
    {label: {fraction: {signal: mean, signal_std: std}}} over its trials, and their `line_styles`."""
    groups = _nplm_groups(done, axes)
    lines: dict[str, dict[float, dict[str, list[float]]]] = {}
    for label, members in groups.items():
        for t in members:
            for key, value in t.metrics.items():
                if (parsed := parse_nplm_key(key)) and parsed[0] == NPLM_POWER:
                    lines.setdefault(label, {}).setdefault(parsed[2], {}).setdefault(parsed[1], []).append(value)
    series = {label: {f: {k: v for sig, vs in by.items() for k, v in ((sig, np.mean(vs)), (f"{sig}_std", np.std(vs)))}
                      for f, by in pts.items()} for label, pts in lines.items()}
    return series, line_styles({label: groups[label] for label in lines}, done)


def _nplm_section(done: list[Trial], axes: list[str], out: Path) -> list[str]:
    """NPLM's detection power against the injected signal fraction, a panel per signal, the `nplm_lines`."""
    series, styles = nplm_lines(done, axes)
    if not series:
        return []
    signals = [s for s in L.SIGNALS if any(s in by for pts in series.values() for by in pts.values())]
    plot_lines(series, {s: L.SIGNAL_LATEX[s] for s in signals}, out / "nplm_power.png", "injected signal fraction",
               "P(Z > 3)", styles, log_x=None, ylim=POWER_RANGE)
    return ["## NPLM detection power", "", "P(Z > 3) of the signal-agnostic test (NPLM toys, Z from the χ² fitted "
            "to the null toys) against the injected signal fraction; mean ± std over the trials of each line.", "",
            "![NPLM power](nplm_power.png)", ""]


def rank_agreement(objective: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """How well `objective` ranks trials by `target` (both per trial): Spearman's rank correlation (NaN
    below 3 trials or for a constant input), and the regret: the best target less the target of the
    trial the objective chooses (its maximum)."""
    from scipy.stats import spearmanr

    objective, target = np.asarray(objective, float), np.asarray(target, float)
    constant = len(objective) < 3 or np.ptp(objective) == 0 or np.ptp(target) == 0
    rho = float("nan") if constant else float(spearmanr(objective, target).statistic)
    return rho, float(target.max() - target[np.argmax(objective)])


def _ranking_section(trials: list[Trial], metric: str, out: Path) -> list[str]:
    """Each signal-free objective (and the validation AUC, the probe) against the test AUC per signal:
    rank correlation and regret over the trials that logged both (stopped-early trials with their last
    evaluation, as the search saw them), and the figure of the study's proxy (`proxy_auc/all` unless the
    study optimised another)."""
    shown = metric if parse_proxy_key(metric) else PROXY_DEFAULT
    signals = [s for s in L.SIGNALS if any(metric_key("auc", s) in t.metrics for t in trials)]
    targets = [metric_key("auc", s) for s in signals] + [metric_key("auc", MEAN)]
    candidates = [proxy_key(n, x) for n in PROXY_METRICS for x in mixes()] + \
        [metric_key("auc", MEAN, validation=True), PROBE_ACCURACY]
    scored = [t for t in trials if shown in t.metrics and all(k in t.metrics for k in targets)]
    if len(scored) < 2:
        return []
    head = ["objective", *(L.SIGNAL_TEXT[s] for s in signals), "mean"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    constant = []
    for c in candidates:
        with_c = [t for t in scored if c in t.metrics]
        if len(with_c) < 2:
            continue
        if len({t.metrics[c] for t in with_c}) == 1:  # chooses nothing: its first trial would be an accident
            value = with_c[0].metrics[c]  # an infinite SI (no background left at ε_S) is logged as the largest float
            constant.append(f"`{c}` = {'∞' if value >= np.finfo(float).max / 2 else f'{value:.4g}'}")
            cells = ["—"] * len(targets)
        else:
            cells = [f"{rho:+.2f} / {regret:.3f}" for rho, regret in
                     (rank_agreement([t.metrics[c] for t in with_c], [t.metrics[k] for t in with_c]) for k in targets)]
        rows.append(f"| {'**' + c + '**' if c == shown else c} | " + " | ".join(cells) + " |")
    if constant:
        rows += ["", f"—: the same for every trial ({', '.join(constant)}), so it ranks nothing."]
    points, titles = {}, {}
    for s, k in zip([*signals, MEAN], targets):
        points[s] = [(t.metrics[shown], t.metrics[k], t.method) for t in scored]
        rho, regret = rank_agreement(*zip(*((x, y) for x, y, _ in points[s])))
        titles[s] = f"{'mean of the signals' if s == MEAN else L.SIGNAL_TEXT[s]}: ρ = {rho:+.2f}, regret {regret:.3f}"
    plot_ranking(points, out / "ranking.png", shown, titles)
    return ["## Choosing without signal labels", "",
            f"How well each objective ranks the {len(scored)} trials by their test AUC: Spearman's ρ / the regret "
            "(the best trial's test AUC less that of the trial the objective chooses). `proxy_*`: held-out "
            "background against its anomaly-augmented views, no signal; `val_auc/mean`: the validation signals; "
            f"`{PROBE_ACCURACY}`: the linear probe on the process labels. Trials stopped early count with their "
            "last evaluation.", "", *rows, "", f"![ranking by {shown}](ranking.png)", ""]


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    return (float(np.mean(values)), float(np.std(values))) if values else None


def _by_number(trials: list[Trial], axis: str, keys: dict[str, str]) -> dict[float, dict[str, float]]:
    """{value of the numeric `axis`: {key: mean, key_std: std}} over the trials at that value."""
    out: dict[float, dict[str, float]] = {}
    for x in sorted({float(t.params[axis]) for t in trials}):
        at = [t for t in trials if float(t.params[axis]) == x]
        out[x] = {}
        for k in keys:
            if stats := _mean_std([t.metrics[k] for t in at if k in t.metrics]):
                out[x] |= {k: stats[0], f"{k}_std": stats[1]}
    return out


def build_report(uri: str | list[str], experiment: str, out_dir: str | Path, metric: str = metric_key("auc", MEAN),
                 executions: str | list[str] = LATEST) -> Path:
    """Write the report of one study (MLflow experiment) to `out_dir`; returns the Markdown file. It reads
    one execution (`executions`: `LATEST`, `ALL` or parent run ids, see `read_study`); with several
    tracking URIs, that choice in each store, merged into one report."""
    check_objective(metric)  # a misspelled metric fails here, not as an empty "best"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    uris = [uri] if isinstance(uri, str) else list(uri)
    read = [read_study(u, experiment, executions) for u in uris]
    runs, trials = [e for r, _ in read for e in r], [t for _, ts in read for t in ts]
    write_csv(trials, out / "trials.csv")
    done = [t for t in trials if t.complete]
    md = [f"# Study `{experiment}`", "",
          f"From MLflow {', '.join(f'`{u}`' for u in uris)}, {time.strftime('%Y-%m-%d %H:%M')}: {len(trials)} trials, "
          f"{len(done)} evaluated after their whole budget, {len(trials) - len(done)} running or stopped early. "
          "All trials: `trials.csv`.", "",
          "Execution" + ("s" if len(runs) > 1 else "") + " read: "
          + "; ".join(f"`{e.name}` (parent run `{e.run_id}`{'' if e.study else ', no study.yaml'})" for e in runs) + ".", ""]
    if not done:
        md.append("No trial has finished its budget yet.")
    else:
        axes = varying(done)
        best = max(done, key=lambda t: t.metrics.get(metric, -np.inf))
        md += ["## Best trial", "", f"`{best.name}` ({method_label(best.method)}): {metric} = "
               f"{best.metrics.get(metric, float('nan')):.3f}"
               + "".join(f", `{a}` = {best.params[a]}" for a in axes if applies(best.method, a)), ""]
        eps_s = eps_s_of(done)
        md += _method_section(done, eps_s)
        if is_search(runs, trials):  # the objective against each parameter
            searched = [a for a in varying(trials) if a not in SEEDS and a != METHOD_KEY]
            md += _search_section(trials, searched, metric, out)
        else:
            encoder = [t for t in done if t.method != BASELINE]  # an ablation's axes vary among these
            encoder_axes = [a for a in varying(encoder) if a == METHOD_KEY or within_a_method(encoder, a)]
            ablations = [a for a in encoder_axes if a not in (*SEEDS, METHOD_KEY) and len({t.params[a] for t in encoder}) <= 12]
            numbers = [a for a in ablations if _as_number([t.params[a] for t in encoder]) is not None]
            others = [a for a in encoder_axes if a not in (*SEEDS, *numbers[:1])]
            if numbers and others:  # a number against method x encoder ...: one line per combination
                md += _comparison_section(done, numbers[0], others, out, eps_s)
            else:
                for axis in ablations:
                    md += _axis_section(done, axis, [a for a in encoder_axes if a not in (*SEEDS, axis)], out, eps_s)
        md += _nplm_section(done, axes, out)
        md += _ranking_section(trials, metric, out)
        with tempfile.TemporaryDirectory() as tmp:
            if curves := _best_curves(done, metric, Path(tmp)):
                plot_curves(curves, out)
                md += ["## ROC and SI of the best trial per method", "", "![ROC](roc.png)", "", "![SI](si.png)", ""]
        md += ["## All trials", "", _trials_table(trials, axes, metric), ""]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return out / "report.md"
