"""A trial's scorer as a registered MLflow model (`export_model`), the pyfunc that serves it
(`ScorerModel`, for `mlflow models predict` and `mlflow.pyfunc.load_model`), and `apply_model`: every
event of ADC2021-layout files scored, with its spread and whether it lies inside the validity domain.

The pyfunc's input is one row per event, the (19, 4) array flattened: columns `pt_0`, `eta_0`, `phi_0`,
`class_0`, ..., `class_18` (`COLUMNS`), pT in GeV; its output: `score`, `spread`, `in_domain`, `boundary`.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path

import h5py
import mlflow.pyfunc
import numpy as np

from ..errors import ConfigError, DataError
from ..events import layout as L
from ..events.io import EventFile
from ..events.validate import check_events
from ..report.build import LATEST, read_study
from ..report.tracking import GIT_COMMIT_TAG, STUDY_CONFIG_FILE, client
from ..train.device import choose_device
from .card import model_card
from .domain import BOUNDARIES
from .scorer import SCORER_DIR, Scorer

FEATURES = ("pt", "eta", "phi", "class")
COLUMNS = [f"{f}_{slot}" for slot in range(L.N_SLOTS) for f in FEATURES]
EXPORTED_FROM_TAG = "anomclr.exported_from"  # an export run: the trial run its model came from
CARD_FILE = "model_card.md"
REQUIREMENTS = ("torch", "numpy", "pandas", "mlflow", "h5py", "pyyaml", "scipy", "tqdm", "matplotlib")


def events_to_frame(events: np.ndarray):
    import pandas as pd

    return pd.DataFrame(np.asarray(events, dtype=np.float32).reshape(len(events), -1), columns=COLUMNS)


def frame_to_events(frame) -> np.ndarray:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"model input: {len(missing)} of the {len(COLUMNS)} columns missing (e.g. {missing[0]}); "
                        "one row per event: pt_0, eta_0, phi_0, class_0, ..., class_18")
    return frame[COLUMNS].to_numpy(dtype=np.float32).reshape(len(frame), L.N_SLOTS, L.N_FEATURES)


def score_frame(scorer: Scorer, events: np.ndarray, device=None):
    """{score, spread, in_domain, boundary} per event, as a DataFrame."""
    import pandas as pd

    score, spread = scorer.scores(events, device or choose_device("auto"))
    codes = scorer.domain.check(events)
    return pd.DataFrame({"score": score, "spread": spread, "in_domain": codes == 0,
                         "boundary": [BOUNDARIES[c] for c in codes]})


class ScorerModel(mlflow.pyfunc.PythonModel):
    """The MLflow pyfunc of an exported scorer: events (`COLUMNS`) in, score, spread and domain out."""

    def load_context(self, context):
        self.scorer = Scorer.load(context.artifacts[SCORER_DIR], choose_device("auto"))

    def predict(self, context, model_input, params=None):
        return score_frame(self.scorer, frame_to_events(model_input))


def choose_trial(uri: str, experiment: str, trial: str | None = None, metric: str | None = None):
    """The trial run to export: `trial` (a run id or run name), else the best complete trial of the
    study's latest execution by `metric`."""
    executions, trials = read_study(uri, experiment, LATEST)
    if trial is not None:
        found = [t for t in trials if trial in (t.run_id, t.name)]
        if not found:
            raise ConfigError(f"experiment {experiment!r}: no trial run {trial!r} in its latest execution "
                              f"({', '.join(t.name for t in trials[:8])}{', ...' if len(trials) > 8 else ''})")
        return found[0]
    scored = [t for t in trials if t.complete and metric in t.metrics]
    if not scored:
        raise ConfigError(f"experiment {experiment!r}: no complete trial with metric {metric!r}")
    return max(scored, key=lambda t: t.metrics[metric])


def export_model(uri: str, experiment: str, name: str, alias: str = "candidate", trial: str | None = None,
                 metric: str = "auc/mean") -> tuple[str, int]:
    """Register the scorer of a trial (`choose_trial`) as MLflow model `name` with `alias`; returns
    (models:/NAME@ALIAS, its version). The model is logged in an export run of the study's experiment
    (tag `anomclr.exported_from`), with the project's code, a signature, an input example, pinned
    requirements and the model card (also an artifact of the run)."""
    import mlflow
    from mlflow.models import infer_signature

    c = client(uri)
    chosen = choose_trial(uri, experiment, trial, metric)
    run = c.get_run(chosen.run_id)
    if SCORER_DIR not in {a.path for a in c.list_artifacts(run.info.run_id)}:
        raise ConfigError(f"trial run {chosen.name!r} ({chosen.run_id}) has no {SCORER_DIR}/ artifacts: it was logged by "
                          "an older version or did not finish; rerun the trial to export it")
    exp_id = run.info.experiment_id
    parent = run.data.tags.get("mlflow.parentRunId")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(c.download_artifacts(run.info.run_id, SCORER_DIR, tmp))
        scorer = Scorer.load(local)
        study_yaml = None
        if parent and STUDY_CONFIG_FILE in {a.path for a in c.list_artifacts(parent)}:
            study_yaml = Path(c.download_artifacts(parent, STUDY_CONFIG_FILE, tmp)).read_text()
        card = model_card(scorer, chosen.name, chosen.run_id, chosen.metrics, chosen.params, study_yaml,
                          run.data.tags.get(GIT_COMMIT_TAG))
        (local / CARD_FILE).write_text(card)
        example = _example_events(scorer)
        signature = infer_signature(events_to_frame(example), score_frame(scorer, example))
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"export {chosen.name}",
                              tags={EXPORTED_FROM_TAG: chosen.run_id}):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=ScorerModel(), artifacts={SCORER_DIR: str(local)},
                code_paths=[str(Path(__file__).resolve().parents[1])], signature=signature,
                input_example=events_to_frame(example[:3]), pip_requirements=_requirements(),
                registered_model_name=name)
            mlflow.log_text(card, CARD_FILE)
    version = int(info.registered_model_version)
    c.set_registered_model_alias(name, alias, version)
    return f"models:/{name}@{alias}", version


def _example_events(scorer: Scorer) -> np.ndarray:
    """Three events inside the scorer's domain, built from its thresholds (the model carries no data)."""
    x = np.zeros((3, L.N_SLOTS, L.N_FEATURES), np.float32)
    x[:, 0] = [[40.0, 0.0, 1.0, L.MET_ID]]
    x[:, L.ELECTRONS.start] = [[max(35.0, scorer.domain.trigger_pt + 5), 0.3, -1.0, L.ELECTRON_ID]]
    x[:, L.JETS.start] = [[max(60.0, scorer.domain.pt_min["jet"] + 5), -0.8, 2.0, L.JET_ID]]
    x[1, L.JETS.start + 1] = [max(30.0, scorer.domain.pt_min["jet"] + 1), 1.2, -2.5, L.JET_ID]
    return x


def _requirements() -> list[str]:
    """The running environment's versions of what the model's code imports, pinned."""
    return [f"{pkg}=={metadata.version(pkg)}" for pkg in REQUIREMENTS]


def load_scorer(model_uri: str, tracking_uri: str, tmp: str | Path) -> Scorer:
    """The scorer inside a registered model (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `runs:/...`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp)))
    except MlflowException as err:
        raise ConfigError(f"model {model_uri} not found in {tracking_uri}: {str(err).splitlines()[0]}") from None
    found = sorted(local.rglob("scorer.json"))
    if not found:
        raise ConfigError(f"model {model_uri}: no scorer inside (not a model exported by anomclr-ray)")
    return Scorer.load(found[0].parent, choose_device("auto"))


def apply_model(scorer: Scorer, data: str | Path, out: str | Path, strict: float | None = None,
                chunk: int = 50_000, progress: bool = True) -> list[Path]:
    """Score every event of `data` (an ADC2021-layout file, or a folder of them): per file
    OUT/<name>.scores.h5 (score, spread, in_domain, boundary per event; the boundaries' names as an
    attribute) and OUT/<name>.report.md. With `strict`, a file whose out-of-domain fraction exceeds it
    is an error (after its outputs are written). Returns the reports."""
    from tqdm import tqdm

    data, out = Path(data), Path(out)
    files = sorted(data.glob("*.h5")) if data.is_dir() else [data]
    if not files:
        raise DataError(f"{data}: no .h5 files")
    out.mkdir(parents=True, exist_ok=True)
    device, reports, refused = choose_device("auto"), [], []
    for path in files:
        with EventFile(path) as f:  # opens and checks the layout before any scoring
            n = len(f)
            score, spread, codes = np.empty(n), np.empty(n), np.empty(n, np.int8)
            bar = tqdm(total=n, desc=path.name, unit="event", disable=not progress)
            for start in range(0, n, chunk):
                x = f.read(start, start + chunk, check=False)
                check_events(x, f.where, start, selection=False)  # the layout; the domain is judged per event
                score[start:start + len(x)], spread[start:start + len(x)] = scorer.scores(x, device)
                codes[start:start + len(x)] = scorer.domain.check(x)
                bar.update(len(x))
            bar.close()
        target = out / f"{path.stem}.scores.h5"
        with h5py.File(target, "w") as h:
            h.create_dataset("score", data=score)
            h.create_dataset("spread", data=spread)
            h.create_dataset("in_domain", data=codes == 0)
            h.create_dataset("boundary", data=codes)
            h.attrs["boundaries"] = list(BOUNDARIES)
            h.attrs["source"] = str(path)
        reports.append(_file_report(scorer, path, out / f"{path.stem}.report.md", score, codes))
        outside = float((codes != 0).mean()) if n else 0.0
        if strict is not None and outside > strict:
            refused.append(f"{path}: {outside:.1%} of its events are outside the model's domain (--strict {strict:g})")
    if refused:
        raise DataError("; ".join(refused))
    return reports


def _file_report(scorer: Scorer, path: Path, target: Path, score: np.ndarray, codes: np.ndarray) -> Path:
    n = len(score)
    counts = np.bincount(codes, minlength=len(BOUNDARIES))
    lines = [f"# `{path.name}` scored", "", f"{n} events scored; {counts[1:].sum()} ({counts[1:].sum() / max(n, 1):.1%}) "
             "outside the model's validity domain.", ""]
    if counts[1:].any():
        lines += ["| why outside (the first boundary crossed) | events | fraction |", "| --- | --- | --- |"]
        lines += [f"| {BOUNDARIES[i]} | {counts[i]} | {counts[i] / n:.2%} |" for i in range(1, len(BOUNDARIES)) if counts[i]]
        lines.append("")
    inside = score[codes == 0]
    lines += ["Score quantiles of the events inside the domain against the training (held-out) background's:", "",
              "| quantile | this file | training background |", "| --- | --- | --- |"]
    for q, ref in sorted(scorer.reference.items()):
        mine = f"{np.quantile(inside, q):.4g}" if len(inside) else "—"
        lines.append(f"| {q:g} | {mine} | {ref:.4g} |")
    target.write_text("\n".join(lines) + "\n")
    return target
