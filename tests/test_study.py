"""End to end through the real stack: Ray Tune (+ Optuna) -> Ray Train DDP -> AE -> MLflow on SQLite."""

import math
from pathlib import Path
import time
from dataclasses import replace

import pytest

import torch
import yaml

from anomclr_ray.events.dataset import DataConfig, with_validation
from anomclr_ray.events.io import EventFile, find_sample_file
from anomclr_ray.method.model import ModelConfig
from anomclr_ray.train import TrainConfig
from anomclr_ray.method.score import ScoreConfig
from anomclr_ray.nplm import NPLMConfig
from anomclr_ray.errors import StudyChangedError
from anomclr_ray.study import StudyConfig
from anomclr_ray.train.distributed import ScalingSpec
from anomclr_ray import configs
from anomclr_ray.infra.storage import Storage
from anomclr_ray.report.tracking import (ERROR_TAG, GIT_COMMIT_TAG, STOPPED_AT_TAG, STOPPED_TAG, TRIAL_TAG, absolute_uri,
                                        client, code_tags)

SIGNALS = ("ato4l", "leptoquark", "h_tautau", "hc_taunu")


def tiny_study(tmp_path, **kw):
    return StudyConfig(
        name="tiny", search_space={"train.mix": {"grid": ["ao", "shift"]}},
        data=DataConfig(n_train=300, n_test=200, n_test_signal=100),
        model=ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16),
        train=TrainConfig(epochs=2, batch_size=100, learning_rate=1e-3),
        score=ScoreConfig(bottleneck=4, hidden=(16, 8), epochs=2, batch_size=64),
        scaling=ScalingSpec(num_workers=1), tracking_uri=f"sqlite:///{tmp_path}/mlruns.db",
        storage_path=str(tmp_path / "runs"), **kw)


def _nested_runs(study):
    c = client(study.tracking_uri)
    exp = c.get_experiment_by_name(study.name)
    runs = c.search_runs([exp.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags], [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


@pytest.mark.slow
def test_tiny_study_end_to_end_lands_in_mlflow_and_reports(tmp_path):
    """2 trials (AE-Raw and AnomCLR+ evaluated after each of 2 epochs) through Ray Tune + Ray Train + MLflow
    on SQLite; then the report, read back from MLflow."""
    from anomclr_ray.report.build import build_report
    from anomclr_ray.study import run_study

    nplm = NPLMConfig(fractions=(0.1,), toys=1, null_toys=10, n_reference=120, n_background=40, centres=20)
    base = tiny_study(tmp_path)
    study = replace(base, search_space={"method": {"grid": ["ae_raw", "anomclr_plus"]}}, eval_every=1,
                    score=replace(base.score, nplm=nplm))
    results = run_study(study)
    assert len(results) == 2 and not results.errors
    trials, parents = _nested_runs(study)
    assert len(parents) == 1 and len(trials) == 2
    assert parents[0].info.status == "FINISHED"  # the study's outcome, not RUNNING forever
    assert {r.data.params["method"] for r in trials} == {"ae_raw", "anomclr_plus"}
    c = client(study.tracking_uri)
    for r in trials:
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert r.data.params["model.model_dim"] == "16" and r.data.params["data.n_train"] == "300"
        for sig in SIGNALS:
            for name in ("auc", "si", "eb_at_es"):
                assert math.isfinite(r.data.metrics[f"{name}/{sig}"]), (name, sig)
        assert 0 < r.data.metrics["auc/mean"] < 1
        assert 0.25 < r.data.metrics["probe/accuracy"] <= 1  # the linear probe on the process labels
        for mix in ("ao", "cs", "shift", "all"):  # signal-free: the test background against its augmented views
            assert 0 <= r.data.metrics[f"proxy_auc/{mix}"] <= 1 and r.data.metrics[f"proxy_si/{mix}"] >= 0
        assert 0 < r.data.metrics["trial/evaluation_s"] < r.data.metrics["trial/wall_s"]
        assert r.data.metrics["trial/evaluation_fraction"] == pytest.approx(
            r.data.metrics["trial/evaluation_s"] / r.data.metrics["trial/wall_s"])
        assert r.data.metrics["epoch"] == 2 and r.info.status == "FINISHED"
        artifacts = {a.path for a in c.list_artifacts(r.info.run_id)}
        assert {"roc.png", "si.png", "curves.npz", "trial.yaml"} <= artifacts
        assert {k: r.data.tags.get(k) for k in code_tags()} == code_tags()  # commit and dirty flag of this checkout
        evaluations = [m.step for m in c.get_metric_history(r.info.run_id, "auc/mean")]
        losses = c.get_metric_history(r.info.run_id, "train/loss")
        if r.data.params["method"] == "ae_raw":  # no encoder: evaluated once, no training curve
            assert evaluations == [2] and losses == []
        else:  # evaluated after epoch 1 and 2 of one continued Ray Train run
            assert evaluations == [1, 2] and [m.step for m in losses] == [0, 1]
        # NPLM's toys at the final evaluation only (the objective is not an NPLM figure)
        assert [m.step for m in c.get_metric_history(r.info.run_id, "nplm_power/ato4l/0.1")] == [2]
        # the evaluation ran on the CPU its Train worker had reserved, with as many threads
        assert r.data.metrics["trial/evaluation_cpus"] == 1 and r.data.metrics["trial/evaluation_threads"] == 1

    # the parent run holds the whole study as `--config` takes it back: the paths made absolute, nothing else changed
    config = c.download_artifacts(parents[0].info.run_id, "study.yaml", str(tmp_path))
    assert configs.load(StudyConfig, config) == replace(
        study, tracking_uri=absolute_uri(study.tracking_uri), storage_path=Storage.at(study.storage_path).uri,
        data=replace(study.data, data_dir=str(Path(study.data.data_dir).resolve())))
    assert parents[0].data.tags[GIT_COMMIT_TAG] == code_tags()[GIT_COMMIT_TAG]

    out = build_report(study.tracking_uri, study.name, tmp_path / "report")
    md = out.read_text()
    table = md.split("| method |")[1].split("\n\n")[0]  # the AUC table
    assert table.count("\n| AE-Raw |") == 1 and table.count("\n| AnomCLR+ |") == 1
    best = max(trials, key=lambda r: r.data.metrics["auc/mean"])
    assert f"auc/mean = {best.data.metrics['auc/mean']:.3f}" in md
    for png in ("roc.png", "si.png"):
        assert (tmp_path / "report" / png).stat().st_size > 20_000
    csv = (tmp_path / "report" / "trials.csv").read_text().splitlines()
    assert len(csv) == 3 and "metrics.auc/ato4l" in csv[0]
    md = build_report(study.tracking_uri, study.name, tmp_path / "by_proxy", metric="proxy_auc/all").read_text()
    assert "## Choosing without signal labels" in md and "| **proxy_auc/all** |" in md
    assert (tmp_path / "by_proxy" / "ranking.png").stat().st_size > 20_000

    _export_apply_and_predict(study, trials, tmp_path)


def _export_apply_and_predict(study, trials, tmp_path):
    """What the study found, taken out of it: each trial's scorer artifacts rebuild its test AUC; the best
    trial registered (`anomclr export`), applied to a file (`anomclr apply`), and served by `mlflow models
    predict` in a fresh process with the scores of the scorer loaded here."""
    import json
    import os
    import subprocess
    import sys

    import h5py
    import numpy as np

    from anomclr_ray import cli
    from anomclr_ray.events.dataset import load_dataset
    from anomclr_ray.export import Scorer
    from anomclr_ray.export.registry import COLUMNS, events_to_frame
    from anomclr_ray.method.metrics import signal_metrics

    c, data = client(study.tracking_uri), load_dataset(study.data)
    for r in trials:
        scorer = Scorer.load(c.download_artifacts(r.info.run_id, "scorer", str(tmp_path / r.info.run_id)))
        device = torch.device("cpu")
        bkg = torch.stack([ae.score(scorer.inputs(data.test_background, device)) for ae in scorer.autoencoders])
        for sig, events in data.test_signals.items():
            sig_scores = torch.stack([ae.score(scorer.inputs(events, device)) for ae in scorer.autoencoders])
            auc = np.mean([signal_metrics(b.numpy(), s.numpy(), study.eps_s)["auc"] for b, s in zip(bkg, sig_scores)])
            assert auc == pytest.approx(r.data.metrics[f"auc/{sig}"], abs=1e-6), (r.info.run_name, sig)
    uri = study.tracking_uri
    assert cli.main(["export", "--experiment", study.name, "--tracking-uri", uri, "--name", "tiny_scorer"]) == 0
    best = max(trials, key=lambda r: r.data.metrics["auc/mean"])
    model = "models:/tiny_scorer@candidate"
    version = c.get_model_version_by_alias("tiny_scorer", "candidate")
    assert version.run_id != best.info.run_id and c.get_run(version.run_id).data.tags["anomclr.exported_from"] == best.info.run_id
    signal = data.test_signals["ato4l"]
    signal_file = find_sample_file(study.data.data_dir, "ato4l")
    assert cli.main(["apply", "--model", model, "--tracking-uri", uri, "--data", str(signal_file),
                     "--out", str(tmp_path / "applied")]) == 0
    with h5py.File(tmp_path / "applied" / f"{signal_file.stem}.scores.h5") as h:
        applied = {k: h[k][:] for k in ("score", "spread", "in_domain", "boundary")}
    with EventFile(signal_file) as f:
        assert len(applied["score"]) == len(f) and applied["in_domain"].dtype == bool  # 300 training events: a tight domain
    assert "outside the model's validity domain" in (tmp_path / "applied" / f"{signal_file.stem}.report.md").read_text()
    local = Scorer.load(c.download_artifacts(best.info.run_id, "scorer", str(tmp_path / "best")))
    np.testing.assert_allclose(applied["score"][:len(signal)], local.scores(signal)[0], rtol=1e-6)
    # MLflow's own command, in a fresh process, on a JSON input of events
    request = tmp_path / "events.json"
    frame = events_to_frame(signal[:20])
    request.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": frame.values.tolist()}}))
    out = subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m", model, "--env-manager", "local",
                          "-i", str(request), "-o", str(tmp_path / "predicted.json"), "-t", "json"],
                         env={**os.environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    predicted = json.loads((tmp_path / "predicted.json").read_text())["predictions"]
    np.testing.assert_allclose([p["score"] for p in predicted], applied["score"][:20], rtol=1e-5)
    assert [p["in_domain"] for p in predicted] == applied["in_domain"][:20].tolist()


@pytest.mark.slow
def test_asha_evaluates_at_every_rung_and_only_stopped_trials_fall_short(tmp_path):
    from anomclr_ray.study import run_study

    base = tiny_study(tmp_path)  # the objective: validation AUC, as hpo.py has it
    study = replace(base, search_space={"train.seed": {"grid": [0, 1, 2]}}, data=with_validation(base.data),
                    train=TrainConfig(epochs=2, batch_size=100, learning_rate=1e-3), eval_every=1, scheduler="asha",
                    metric="val_auc/mean")
    results = run_study(study)
    assert len(results) == 3 and not results.errors
    trials, _ = _nested_runs(study)
    assert len(trials) == 3
    c = client(study.tracking_uri)
    for r in trials:
        for name in ("auc/mean", "val_auc/mean"):
            steps = [m.step for m in c.get_metric_history(r.info.run_id, name)]
            assert steps == list(range(1, int(r.data.metrics["epoch"]) + 1))  # one evaluation per rung, in order
        # every run ends FINISHED; those ASHA stopped say so, and at which epoch
        assert r.info.status == "FINISHED"
        stopped = r.data.metrics["epoch"] < 2
        assert (r.data.tags.get(STOPPED_TAG) == "true") == stopped
        assert r.data.tags.get(STOPPED_AT_TAG) == (str(int(r.data.metrics["epoch"])) if stopped else None)
    assert _nested_runs(study)[1][0].info.status == "FINISHED"
    print("epochs reached:", sorted(r.data.metrics["epoch"] for r in trials))


def test_ae_raw_trials_need_no_encoder_and_check_the_raw_input_dimension(tmp_path):
    from anomclr_ray.study import evaluation_epochs, resolve

    base = tiny_study(tmp_path)
    cfgs = resolve(base, {"method": "ae_raw"})
    assert cfgs.method == "ae_raw" and cfgs.train.loss == base.train.loss
    cfgs = resolve(base, {"method": "clr"})
    assert cfgs.method == "clr" and cfgs.train.loss == "clr"  # a contrastive method sets the loss
    assert resolve(base, {"train.loss": "anomclr"}).method == "anomclr"  # without a method key: the loss
    assert resolve(base, {}).method == base.train.loss
    # bottleneck 20 is too big for the 16-dim encoder but fine for the 57 raw inputs
    with pytest.raises(ValueError, match=r"bottleneck \(20\) must be smaller than the input dimension \(16\)"):
        replace(base, score=ScoreConfig(bottleneck=20, hidden=(32,), batch_size=64), search_space={"method": {"grid": ["ae_raw", "clr"]}})
    replace(base, score=ScoreConfig(bottleneck=20, hidden=(32,), batch_size=64), search_space={"method": {"grid": ["ae_raw"]}})
    with pytest.raises(ValueError, match="unknown method 'byol': expected one of ae_raw, clr, anomclr, anomclr_plus, simclr"):
        replace(base, search_space={"method": {"grid": ["byol"]}})
    with pytest.raises(ValueError, match="unknown loss 'ae_raw'"):  # the baseline is a method, never a loss
        replace(base, search_space={"train.loss": {"grid": ["ae_raw"]}})
    with pytest.raises(ValueError, match="'method' sets train.loss; give one of the two keys"):
        replace(base, search_space={"method": {"grid": ["clr"]}, "train.loss": {"grid": ["clr"]}})
    with pytest.raises(ValueError, match="eval_every must be >= 0, and >= 1 for ASHA"):
        replace(base, scheduler="asha")
    assert evaluation_epochs(replace(base, eval_every=4), 10) == [4, 8, 10]
    assert evaluation_epochs(base, 10) == [10]


def test_concurrent_trials_fill_the_cluster_with_train_workers():
    from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

    from anomclr_ray.study import TRIAL_DRIVER_RESOURCES, concurrent_trials

    assert resource_dict_to_pg_factory(TRIAL_DRIVER_RESOURCES).head_cpus == 0  # all CPUs left for the workers
    assert concurrent_trials(ScalingSpec(), {"CPU": 2.0}) == 2
    assert concurrent_trials(ScalingSpec(num_workers=2), {"CPU": 2.0}) == 1
    assert concurrent_trials(ScalingSpec(use_gpu=True), {"CPU": 16.0, "GPU": 1.0}) == 1
    assert concurrent_trials(ScalingSpec(use_gpu=True, num_workers=2), {"CPU": 32.0, "GPU": 8.0}) == 4


def test_impossible_configs_fail_before_ray_starts(tmp_path):
    base = tiny_study(tmp_path)
    with pytest.raises(ValueError, match=r"metric 'val_auc/mean': .*val_\* metrics need data n_val, n_val_signal"):
        replace(base, metric="val_auc/mean")
    with pytest.raises(ValueError, match=r"metric 'eb_at_es/ato4l': the trials report auc/ato4l, .*val_auc/mean"):
        replace(base, metric="eb_at_es/ato4l", data=with_validation(base.data))
    with pytest.raises(ValueError, match=r"'auc/means' is not a metric key .*signal 'means': expected one of ato4l"):
        replace(base, metric="auc/means")
    with pytest.raises(ValueError, match="unknown augmentation mix 'bogus'"):
        replace(base, search_space={"train.mix": {"grid": ["ao", "bogus"]}})
    with pytest.raises(ValueError, match=r"bottleneck \(20\) must be smaller than the input dimension \(16\)"):
        replace(base, search_space={"score.bottleneck": {"grid": [4, 20]}})
    with pytest.raises(ValueError, match=r"ScoreConfig.batch_size \(4096\) is larger than the \d+ training events of the AE"):
        replace(base, search_space={"score.batch_size": {"grid": [64, 4096]}})
    with pytest.raises(ValueError, match="search space key 'train.temprature'"):
        replace(base, search_space={"train.temprature": {"grid": [0.1]}})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        replace(base, search="tpe", search_space={"train.temperature": {"uniform": [0.0, 0.5]}})


def test_method_settings_reach_that_method_only(tmp_path):
    from anomclr_ray.study import resolve

    base = tiny_study(tmp_path)
    settings = {"anomclr": {"train.temperature": 0.5, "train.mix": "ao", "score.bottleneck": 2},
                "ae_raw": {"score.bottleneck": 3, "score.raw_one_hot": True}}
    study = replace(base, search_space={"method": {"grid": ["ae_raw", "clr", "anomclr"]}}, method_settings=settings)
    tuned, plain, raw = (resolve(study, {"method": m}) for m in ("anomclr", "clr", "ae_raw"))
    assert (tuned.train.temperature, tuned.train.mix, tuned.score.bottleneck) == (0.5, "ao", 2)
    assert (plain.train.temperature, plain.train.mix, plain.score.bottleneck) == (
        base.train.temperature, base.train.mix, base.score.bottleneck)
    assert (raw.score.bottleneck, raw.score.raw_one_hot) == (3, True)
    assert configs.from_plain(StudyConfig, yaml.safe_load(configs.dumps(study))) == study  # as study.yaml records it
    with pytest.raises(ValueError, match="method_settings.anomclr 'train.temprature'"):
        replace(study, method_settings={"anomclr": {"train.temprature": 0.5}})
    with pytest.raises(ValueError, match="method_settings.ae_raw.model.model_dim: ae_raw has no encoder"):
        replace(study, method_settings={"ae_raw": {"model.model_dim": 8}})
    with pytest.raises(ValueError, match="method_settings.anomclr 'method': expected <section>.<field>"):
        replace(study, method_settings={"anomclr": {"method": "clr"}})
    with pytest.raises(ValueError, match="unknown method 'anomclrr'"):
        replace(study, method_settings={"anomclrr": {"train.temperature": 0.5}})
    with pytest.raises(ValueError, match=r"bottleneck \(40\) must be smaller"):  # checked at every corner
        replace(study, method_settings={"clr": {"score.bottleneck": 40}})


def test_unreachable_tracking_server_fails_before_training(tmp_path):
    from anomclr_ray.study import run_study

    study = replace(tiny_study(tmp_path), tracking_uri="http://127.0.0.1:9")
    t = time.perf_counter()
    with pytest.raises(ConnectionError, match="MLflow tracking store http://127.0.0.1:9 is not reachable"):
        run_study(study)
    assert time.perf_counter() - t < 15
    assert not (tmp_path / "runs").exists()


def test_relative_sqlite_uri_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("sqlite:///mlruns.db") == f"sqlite:///{tmp_path}/mlruns.db"
    assert absolute_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_a_trial_run_killed_before_its_params_gets_them_when_the_trial_reruns(tmp_path):
    """A kill between creating a trial's run and its first batch leaves a run without params; the restored
    trial finds that run (no second one) and logs what it lacks."""
    from anomclr_ray.report.tracking import experiment_id, log_trial, start_parent_run

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    exp = experiment_id(uri, "killed", (tmp_path / "mlartifacts").as_uri())
    parent = start_parent_run(uri, exp, "killed", {"name": "killed"})
    client(uri).create_run(exp, run_name="trial 0", tags={"mlflow.parentRunId": parent, TRIAL_TAG: "t0"})
    log_trial(uri, exp, parent, "t0", "trial 0", {"train": {"mix": "cs"}}, {"auc/mean": 0.7}, 1, {}, [],
              finished=True)
    runs = [r for r in client(uri).search_runs([exp]) if r.info.run_id != parent]
    assert len(runs) == 1 and runs[0].data.params == {"train.mix": "cs"}
    assert runs[0].data.metrics == {"auc/mean": 0.7}


KILLED_SPACE = {"method": {"grid": ["ae_raw"]}, "train.seed": {"grid": [0, 1, 2]}}


@pytest.mark.slow
def test_killed_study_resumes_without_losing_or_duplicating_trials(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from anomclr_ray.study import run_study

    # AE-Raw trials (no Ray Train run: seconds each): what is checked is the study's bookkeeping; a contrastive
    # trial killed mid-run and resumed from its checkpoint is test_multinode.py's and test_distributed.py's
    study = replace(tiny_study(tmp_path), search_space=KILLED_SPACE, train=TrainConfig(epochs=3, batch_size=100))
    script = tmp_path / "study.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\nfrom test_study import KILLED_SPACE, tiny_study\nfrom dataclasses import replace\n"
        "from pathlib import Path\nfrom anomclr_ray.train import TrainConfig\nfrom anomclr_ray.study import run_study\n"
        "s = replace(tiny_study(Path(%r)), search_space=KILLED_SPACE, train=TrainConfig(epochs=3, batch_size=100))\n"
        "run_study(s)\n" % (str(Path(__file__).parent), str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "study.log", "w"))
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        try:
            done = len(_nested_runs(study)[0])
        except Exception:  # noqa: BLE001 - the store is still being created
            continue
        if done >= 1:
            break
    assert proc.poll() is None, "the study process ended early:\n" + (tmp_path / "study.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= done < 3, f"the kill came too late or too early: {done} trials logged"
    time.sleep(2)
    # the same name and storage with another config is refused, naming what changed, before any work
    with pytest.raises(StudyChangedError, match=r"train\.epochs: 3 -> 4.*--set name="):
        run_study(replace(study, train=replace(study.train, epochs=4)))
    # a lost parent-run record: the restore finds the parent in MLflow by the study's name and storage
    (tmp_path / "runs" / f"{study.name}.mlflow_parent").unlink()
    results = run_study(study)  # restores the killed study
    trials, parents = _nested_runs(study)
    assert len(parents) == 1  # the restored execution keeps its parent run
    assert parents[0].info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in trials)
    assert sorted(r.data.params["train.seed"] for r in trials) == ["0", "1", "2"]
    assert len({r.data.tags[TRIAL_TAG] for r in trials}) == 3
    assert len(results) == 3 and not results.errors


def _data_copy(tmp_path):
    import shutil

    from conftest import DEFAULT_DATA

    data = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA, data, ignore=shutil.ignore_patterns("*.png", "*.md"))
    return data


def _put_nan(data, event: int) -> None:
    import h5py

    from anomclr_ray.events import layout as L

    with h5py.File(data / L.FILE_NAMES[L.BACKGROUND], "r+") as f:
        f[L.PARTICLES_KEY][event, 0, 0] = float("nan")


def test_a_bad_value_in_the_events_fails_the_study_before_it_starts(tmp_path):
    """A NaN in an event a trial would read is found by the study's checks, before Ray, MLflow runs or
    storage: one error naming the file and the event."""
    from anomclr_ray.events.validate import EventValidationError
    from anomclr_ray.study import run_study

    data = _data_copy(tmp_path)
    _put_nan(data, 150)
    study = replace(tiny_study(tmp_path), data=replace(tiny_study(tmp_path).data, data_dir=str(data)))
    with pytest.raises(EventValidationError, match=r"background.*event 150"):
        run_study(study)
    assert not (tmp_path / "runs" / "tiny").exists() and client(study.tracking_uri).get_experiment_by_name("tiny") is None


@pytest.mark.slow
def test_an_input_error_in_a_trial_stops_the_study_without_retries(tmp_path, monkeypatch):
    """The background file changes after the study's checks (a NaN written into it as Ray starts): the first
    trial to read it fails, and the study stops at once with that error instead of retrying: with
    max_failures 3 each trial would fail 4 times; here Tune's error files record at most 2 (a trial that
    fails at the same moment as the first may be counted once more before the stop). The failed trial's run
    is FAILED saying why, the parent FAILED, no run is left RUNNING."""
    from anomclr_ray import study as study_module
    from anomclr_ray.events.validate import EventValidationError

    data = _data_copy(tmp_path)
    connect = study_module.connect

    def change_then_connect(address):
        _put_nan(data, 150)
        return connect(address)

    monkeypatch.setattr(study_module, "connect", change_then_connect)
    study = replace(tiny_study(tmp_path), data=replace(tiny_study(tmp_path).data, data_dir=str(data)), max_failures=3)
    with pytest.raises(EventValidationError, match=r"background.*event 150"):
        study_module.run_study(study)
    failures = [p.read_text().count("Failure #") for p in (tmp_path / "runs" / "tiny").glob("*/error.txt")]
    assert failures and min(failures) == 1 and max(failures) <= 2, failures
    trials, parents = _nested_runs(study)
    assert parents[0].info.status == "FAILED"
    assert {r.info.status for r in trials} <= {"FAILED", "KILLED"} and trials
    failed = [r for r in trials if r.info.status == "FAILED"]
    assert failed and all(r.data.tags[ERROR_TAG].startswith("EventValidationError: ") for r in failed)


@pytest.mark.slow
def test_a_study_with_failed_trials_exits_nonzero_naming_the_first_error(tmp_path, capsys):
    """A trial that fails for a reason that is not its input (here a loss that turns NaN: a learning rate of
    1e30 sends the weights past float32 after one step) fails after Tune's retries (none here), the
    script says so in one line and exits 1 after the report."""
    import argparse

    from anomclr_ray import study_script

    base = tiny_study(tmp_path)
    study = replace(base, search_space={"train.learning_rate": {"grid": [1e30]}}, max_failures=0,
                    train=replace(base.train, epochs=1))
    with pytest.raises(SystemExit) as exit_:
        study_script.run(study, argparse.Namespace(address=None, reports=tmp_path / "reports"))
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("1 trials failed; the first: FloatingPointError: pretrain: loss is nan"), err
    trials, parents = _nested_runs(study)  # the failed trial's run says why; the study FAILED
    assert parents[0].info.status == "FAILED" and [r.info.status for r in trials] == ["FAILED"]
    assert trials[0].data.tags[ERROR_TAG].startswith("FloatingPointError: ")


def test_a_study_scripts_input_mistake_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    from conftest import REPO, free_port

    out = subprocess.run([sys.executable, str(REPO / "studies" / "ablation_augmentations.py"), "--smoke",
                          "--tracking-uri", f"http://127.0.0.1:{free_port()}", "--storage", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line, no traceback
    assert out.stderr.startswith("ablation_augmentations.py: error: MLflow tracking store http://127.0.0.1:")


def test_a_grid_with_baseline_adds_one_ae_raw_trial_per_value_of_what_changes_it(tmp_path):
    space = {"train.mix": {"grid": ["ao", "cs"]}, "train.seed": {"grid": [0, 1]}, "score.bottleneck": {"grid": [2, 4]},
             "model.model_dim": {"grid": [16, 32]}}
    study = replace(tiny_study(tmp_path), search_space=space, baseline=True)
    points = study.grid_points()
    assert len(points) == 2 * 2 * 2 * 2 + 2 * 2
    baseline = points[16:]
    assert baseline == [{"train.seed": s, "score.bottleneck": b, "method": "ae_raw"} for s in (0, 1) for b in (2, 4)]
    assert all("method" not in p for p in points[:16])
    methods = replace(study, search_space={"method": {"grid": ["clr", "simclr"]}, "train.seed": {"grid": [0, 1]}})
    assert methods.grid_points()[4:] == [{"train.seed": s, "method": "ae_raw"} for s in (0, 1)]  # not one per method
    with pytest.raises(ValueError, match="baseline adds the ae_raw trials to a grid study"):
        replace(study, search_space={"method": {"grid": ["ae_raw", "clr"]}})
    with pytest.raises(ValueError, match="baseline adds the ae_raw trials to a grid study"):
        replace(study, search="tpe", search_space={"train.mix": {"choice": ["ao"]}})


def test_tunes_console_table_names_each_trial_by_the_values_it_varies():
    from types import SimpleNamespace

    from anomclr_ray.study import GRID_POINT, trial_label

    grid = SimpleNamespace(trial_id="bd399_00003", config={GRID_POINT: {"train.mix": "shift", "train.seed": 1},
                                                            "train.temperature": 0.0723456})
    assert trial_label(grid) == "mix=shift seed=1 temperature=0.07235 00003"
    baseline = SimpleNamespace(trial_id="bd399_00004", config={GRID_POINT: {"train.seed": 0, "method": "ae_raw"}})
    assert trial_label(baseline) == "seed=0 method=ae_raw 00004"


def test_the_ae_bottleneck_is_checked_against_the_embedding_dimension(tmp_path):
    space = {"model.embedding_dim": {"grid": [4, 16]}, "model.kind": {"grid": ["mlp", "transformer"]}}
    with pytest.raises(ValueError, match=r"bottleneck \(5\) must be smaller than the input dimension \(4\)"):
        replace(tiny_study(tmp_path), search_space=space, score=ScoreConfig(bottleneck=5))
    study = replace(tiny_study(tmp_path), search_space=space, score=replace(tiny_study(tmp_path).score, bottleneck=2))
    assert len(study.grid_points()) == 4


def test_a_study_whose_trials_can_run_nowhere_says_so_instead_of_waiting(tmp_path):
    """Trials that need a resource no node offers (as after the last such node was lost) wait; past
    `stall_timeout_s` the study fails with one ClusterError line, its parent run KILLED."""
    from anomclr_ray.errors import ClusterError
    from anomclr_ray.study import run_study

    base = tiny_study(tmp_path)
    study = replace(base, scaling=replace(base.scaling, custom_resources={"lost_node": 1}), stall_timeout_s=5)
    t0 = time.time()
    with pytest.raises(ClusterError, match=r"no trial has run for 5 s while 2 wait: no node of the Ray cluster offers "
                                           r"what a trial needs \(\{'CPU': 1\.0, 'lost_node': 1\}"):
        run_study(study)
    assert time.time() - t0 < 120
    assert _nested_runs(study)[1][0].info.status == "KILLED"


@pytest.mark.parametrize("objective", ["proxy", "validation"])
def test_the_recorded_choices_are_what_each_search_table_gives(tmp_path, objective):
    """docs/tuned/choices_<objective>.yaml (what the tuned Table 2s ran with) is studies/tuned_choices.py's
    rule applied to the recorded searches: the best proxy_auc/all (val_auc/mean) trial of each method's table."""
    import subprocess
    import sys

    from conftest import REPO

    out = subprocess.run([sys.executable, str(REPO / "studies" / "tuned_choices.py"), "--objective", objective,
                          "--out", str(tmp_path / "choices.yaml")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    recorded = yaml.safe_load((REPO / "docs" / "tuned" / f"choices_{objective}.yaml").read_text())
    assert yaml.safe_load((tmp_path / "choices.yaml").read_text()) == recorded and set(recorded) == {
        "ae_raw", "clr", "anomclr", "anomclr_plus"}
    missing = subprocess.run([sys.executable, str(REPO / "studies" / "tuned_choices.py"), "--objective", objective,
                              "--tables", "/nonexistent"], capture_output=True, text=True, timeout=300)
    table = "hpo_proxy_ae_raw.csv" if objective == "proxy" else "hpo_ae_raw.csv"
    assert missing.returncode == 2 and f"{table}: no such trial table" in missing.stderr
