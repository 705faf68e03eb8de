"""Reports read from a real MLflow store (SQLite here; a tracking server in test_tracking_server.py)."""

import re
import time

import numpy as np
import pytest
from conftest import AUC_EXAMPLE as AUC
from conftest import log_synthetic_study

from anomclr_ray.method.names import method_color
from anomclr_ray.report.build import build_report, group_summary, line_styles, nplm_lines, read_trials, varying
from anomclr_ray.report.figures import lighter, plot_bars, plot_lines, plot_versus

def shifted(delta):
    return {s: a + delta for s, a in AUC.items()}


def test_mix_ablation_report_has_bars_with_seed_error_bars_and_a_row_per_mix(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": "anomclr_plus", "train": {"mix": mix, "seed": seed}}, "auc": shifted(d + 0.02 * seed)}
              for mix, d in (("ao", 0.0), ("cs", 0.05)) for seed in (0, 1)]
    trials.append({"params": {"method": "anomclr_plus", "train": {"mix": "shift", "seed": 0}}, "auc": AUC,
                   "epoch": 1})  # still running: in the CSV and the trial table, not in the figures
    log_synthetic_study(uri, "abl", trials, tmp_path)
    out = build_report(uri, "abl", tmp_path / "rep")
    md = out.read_text()
    assert "5 trials, 4 evaluated after their whole budget, 1 running or stopped early" in md
    mix_table = md.split("| train.mix |")[1].split("\n\n")[0].splitlines()
    rows = {r.split("|")[1].strip(): r for r in mix_table[2:]}
    assert set(rows) == {"ao", "cs"}
    # ao: seeds give 0.90 and 0.92 for A->4l: mean 0.910, std over the two seeds 0.010
    assert "| 0.910 ± 0.010 |" in rows["ao"] and "| 0.960 ± 0.010 |" in rows["cs"]
    assert (tmp_path / "rep" / "by_train.mix.png").stat().st_size > 20_000
    assert (tmp_path / "rep" / "roc.png").stat().st_size > 20_000
    assert len((tmp_path / "rep" / "trials.csv").read_text().splitlines()) == 6
    assert len(re.findall(r"^\| trial \d+ \|", md, re.M)) == 5  # every trial in the table, the running one too


def test_the_ae_raw_trials_of_an_ablation_are_its_reference_not_a_group(tmp_path):
    """A study with `baseline`: the AE-Raw trials (mix at the base value, which does not apply to them)
    are drawn as the reference of every bar and listed as their own row, never counted in a mix."""
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": "anomclr_plus", "train": {"mix": mix, "seed": seed}}, "auc": shifted(d)}
              for mix, d in (("ao", 0.0), ("all", 0.05)) for seed in (0, 1)]
    trials += [{"params": {"method": "ae_raw", "train": {"mix": "all", "seed": seed}}, "auc": shifted(-0.1 + 0.02 * seed)}
               for seed in (0, 1)]
    log_synthetic_study(uri, "abl", trials, tmp_path)
    md = build_report(uri, "abl", tmp_path / "rep").read_text()
    rows = {r.split("|")[1].strip(): r for r in md.split("| train.mix |")[1].split("\n\n")[0].splitlines()[2:]}
    assert set(rows) == {"ao", "all", "AE-Raw"}
    assert "| 0.950 ± 0.000 |" in rows["all"]  # the two AnomCLR+ trials only
    assert "| 0.810 ± 0.010 |" in rows["AE-Raw"]  # A->4l: 0.80 and 0.82 over the two seeds
    assert "Dashed: AE-Raw (2 trials)" in md
    assert "| trial 4 | yes | ae_raw | — | 0 |" in md  # the mix does not apply to AE-Raw; its seed does
    assert "By `method`" not in md  # the method is not an ablation axis of this study


def test_settings_that_come_with_each_method_are_not_an_axis_of_the_study(tmp_path):
    """A loss comparison at each method's own settings (`method_settings`): the dimension differs between
    methods but not within one, so the report draws no figure against it; a dimension that varies within a
    method still gets one."""
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    dims = {"clr": 32, "anomclr": 16, "anomclr_plus": 64}
    trials = [{"params": {"method": m, "model": {"model_dim": d}, "train": {"seed": seed}}, "auc": shifted(0.01 * seed)}
              for m, d in dims.items() for seed in (0, 1)]
    log_synthetic_study(uri, "per_method", trials, tmp_path)
    md = build_report(uri, "per_method", tmp_path / "rep").read_text()
    assert "## Against `model.model_dim`" not in md and "## By `model.model_dim`" not in md
    assert not list((tmp_path / "rep").glob("cmp_*.png")) and not list((tmp_path / "rep").glob("*model_dim*.png"))
    trials += [{"params": {"method": "clr", "model": {"model_dim": 8}, "train": {"seed": 0}}, "auc": AUC}]
    log_synthetic_study(uri, "varied", trials, tmp_path)
    md = build_report(uri, "varied", tmp_path / "rep2").read_text()
    assert "## Against `model.model_dim`" in md and list((tmp_path / "rep2").glob("cmp_*.png"))


def test_the_reference_line_is_drawn_in_both_kinds_of_figure(tmp_path):
    groups = {"ao": {"ato4l": {"auc": 0.9, "auc_std": 0.01, "si": 2.0, "si_std": 0.1}}}
    reference = {"ato4l": {"auc": 0.7, "auc_std": 0.02, "si": 1.5, "si_std": 0.1}}
    plain, ref = plot_bars(groups, tmp_path / "a.png", "t"), plot_bars(groups, tmp_path / "b.png", "t", reference=reference)
    assert plain.read_bytes() != ref.read_bytes()
    series = {8.0: groups["ao"], 16.0: groups["ao"], 32.0: groups["ao"]}
    plain = plot_versus(series, tmp_path / "c.png", "dim")
    assert plain.read_bytes() != plot_versus(series, tmp_path / "d.png", "dim", reference=reference).read_bytes()


def test_dimension_study_plots_metrics_versus_dimension(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": "anomclr_plus", "model": {"model_dim": d}}, "auc": shifted(0.01 * k)}
              for k, d in enumerate((8, 16, 32, 64))]
    log_synthetic_study(uri, "dims", trials, tmp_path)
    md = build_report(uri, "dims", tmp_path / "rep").read_text()
    assert "![model.model_dim](vs_model.model_dim.png)" in md
    assert (tmp_path / "rep" / "vs_model.model_dim.png").stat().st_size > 20_000


def test_group_summary_uses_ae_seed_std_for_a_single_trial(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    log_synthetic_study(uri, "one", [{"params": {"method": "clr"}, "auc": AUC}], tmp_path)
    s = group_summary(read_trials(uri, "one"), "method")["clr"]["ato4l"]
    assert s["auc"] == pytest.approx(0.9) and s["auc_std"] == pytest.approx(0.01) and s["n"] == 1


def test_unknown_experiment_names_the_ones_there(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    log_synthetic_study(uri, "real_study", [{"params": {"method": "clr"}, "auc": AUC}], tmp_path)
    with pytest.raises(ValueError, match=r"experiment 'nope' not found in .*experiments there: .*real_study"):
        build_report(uri, "nope", tmp_path / "rep")


def test_search_report_plots_the_objective_against_each_parameter(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    rng = np.random.default_rng(1)
    trials = [{"params": {"method": m, "train": {"temperature": float(t), "learning_rate": float(lr), "mix": mix}},
               "auc": shifted(float(rng.uniform(-0.05, 0.05)))}
              for m, t, lr, mix in zip(["clr", "anomclr", "anomclr_plus"] * 2, rng.uniform(0.05, 1, 6),
                                       rng.uniform(1e-5, 1e-3, 6), ["ao", "cs"] * 3)]
    log_synthetic_study(uri, "hpo", trials, tmp_path)
    md = build_report(uri, "hpo", tmp_path / "rep").read_text()
    assert "![search](search.png)" in md and "## By " not in md and "NPLM" not in md
    assert (tmp_path / "rep" / "search.png").stat().st_size > 20_000


def test_an_embedding_comparison_plots_one_line_per_method_and_encoder_against_the_dimension(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": m, "model": {"kind": k, "embedding_dim": d}, "train": {"seed": s}},
               "auc": shifted(0.01 * d / 4 + (0.02 if k == "mlp" else 0)), "probe": 0.6 + 0.01 * d,
               "metrics": {f"nplm_power/{sig}/{f:g}": min(1.0, f * d * 20) for sig in ("ato4l", "hc_taunu")
                           for f in (0.001, 0.005, 0.01)}}
              for m in ("simclr", "vicreg") for k in ("mlp", "transformer") for d in (4, 16) for s in (0, 1)]
    trials.append({"params": {"method": "ae_raw", "train": {"seed": 0}}, "auc": shifted(-0.1), "probe": 0.55,
                   "metrics": {"nplm_power/ato4l/0.01": 0.3}})
    log_synthetic_study(uri, "emb", trials, tmp_path)
    md = build_report(uri, "emb", tmp_path / "rep").read_text()
    assert "## Against `model.embedding_dim`" in md and "dashed: AE-Raw" in md
    for name in ("cmp_auc.png", "cmp_si.png", "cmp_probe_accuracy.png"):
        assert f"({name})" in md and (tmp_path / "rep" / name).stat().st_size > 20_000
    assert "By `model.kind`" not in md  # the comparison replaces the per-axis bars
    assert "## NPLM detection power" in md and (tmp_path / "rep" / "nplm_power.png").stat().st_size > 20_000
    done = read_trials(uri, "emb")  # NPLM's lines: method x encoder x dimension (seeds pooled), each its own look
    series, styles = nplm_lines(done, varying(done))
    assert len(series) == len(styles) == 9 and len(set(styles.values())) == 9
    assert series["SimCLR · embedding_dim=16 · kind=mlp"][0.001]["ato4l"] == pytest.approx(0.32)


def test_a_learning_curve_draws_a_distinct_line_per_epochs_value_against_the_training_events(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": "anomclr_plus", "data": {"n_train": n}, "train": {"epochs": e}}, "epoch": e,
               "auc": shifted(0.01 * e / 10 + n / 1e6)} for n in (25_000, 50_000, 100_000) for e in (40, 10, 20)]
    trials += [{"params": {"method": "ae_raw", "data": {"n_train": n}}, "auc": shifted(-0.05)} for n in (25_000, 50_000)]
    log_synthetic_study(uri, "lc", trials, tmp_path)
    md = build_report(uri, "lc", tmp_path / "rep").read_text()
    assert "## Against `data.n_train`" in md and "dashed: AE-Raw" in md
    assert (tmp_path / "rep" / "cmp_auc.png").stat().st_size > 20_000
    done = [t for t in read_trials(uri, "lc") if t.method != "ae_raw"]
    combos = {f"epochs {e}": [t for t in done if t.params["train.epochs"] == str(e)] for e in (10, 20, 40)}
    styles = line_styles(combos, done)
    assert len(set(styles.values())) == 3 and styles["epochs 10"] == (lighter(method_color("anomclr_plus"), 0), "-")


def test_the_trial_table_says_how_far_a_trial_stopped_early_got(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    log_synthetic_study(uri, "asha", [{"params": {"method": "clr"}, "auc": AUC, "epoch": 1, "budget": 3},
                                      {"params": {"method": "clr"}, "auc": AUC, "epoch": 3, "budget": 3}], tmp_path)
    md = build_report(uri, "asha", tmp_path / "rep").read_text()
    assert "| trial 0 | no (epoch 1 of 3) |" in md and "| trial 1 | yes |" in md


def test_a_line_plot_over_decades_gets_a_log_axis_by_itself(tmp_path):
    lines = {"AE-Raw": {f: {"ato4l": f * 10} for f in (0.001, 0.01, 0.1)}}
    auto, log, linear = (plot_lines(lines, {"ato4l": "A"}, tmp_path / f"{name}.png", "f", "P", log_x=mode).read_bytes()
                         for name, mode in (("auto", None), ("log", True), ("linear", False)))
    assert auto == log != linear


def test_a_report_reads_one_execution_of_a_study_unless_told_otherwise(tmp_path):
    """The same study name run twice on fresh storage: two parent runs. The report reads the latest by
    default, the one named, or all of them; and one report merges the study's runs in two stores."""
    from anomclr_ray.report.build import ALL, read_study

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    first = [{"params": {"method": "clr", "train": {"seed": s}}, "auc": shifted(-0.05)} for s in (0, 1)]
    second = [{"params": {"method": "clr", "train": {"seed": s}}, "auc": shifted(0.05)} for s in (0, 1, 2)]
    log_synthetic_study(uri, "again", first, tmp_path)
    time.sleep(0.01)
    log_synthetic_study(uri, "again", second, tmp_path)
    runs, trials = read_study(uri, "again")
    assert len(runs) == 1 and len(trials) == 3  # the latest execution only, never the two pooled
    assert "3 trials" in build_report(uri, "again", tmp_path / "rep").read_text()
    assert len(read_trials(uri, "again", ALL)) == 5
    older = read_study(uri, "again", ALL)[0][0].run_id
    assert {t.metrics["auc/ato4l"] for t in read_trials(uri, "again", [older])} == {AUC["ato4l"] - 0.05}
    with pytest.raises(ValueError, match="no execution"):
        read_trials(uri, "again", ["0123"])
    other = f"sqlite:///{tmp_path}/other.db"  # the study's other part, on another cluster's store
    log_synthetic_study(other, "again", first, tmp_path / "other")
    md = build_report([uri, other], "again", tmp_path / "merged").read_text()
    assert "5 trials" in md and "Executions read:" in md
    pooled = [AUC["ato4l"] + 0.05] * 3 + [AUC["ato4l"] - 0.05] * 2  # A->4l of the five trials
    assert f"| {np.mean(pooled):.3f} ± {np.std(pooled):.3f} |" in md


def test_the_report_lays_a_study_out_as_its_recorded_config_says(tmp_path):
    """A 3-axis ablation grid varies as many params as a search; its study.yaml says it is a grid."""
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": "anomclr", "train": {"mix": mix, "temperature": t}, "score": {"bottleneck": b}},
               "auc": shifted(0.01 * b - t)} for mix in ("ao", "cs") for t in (0.1, 0.2) for b in (2, 4)]
    space = {"train.mix": {"grid": ["ao", "cs"]}, "train.temperature": {"grid": [0.1, 0.2]},
             "score.bottleneck": {"grid": [2, 4]}}
    log_synthetic_study(uri, "grid3", trials, tmp_path, study={"name": "grid3", "search": "grid", "search_space": space})
    md = build_report(uri, "grid3", tmp_path / "rep").read_text()
    assert "![search](search.png)" not in md and "## Against `score.bottleneck`" in md  # one line per mix x τ
    log_synthetic_study(uri, "tpe2", trials[:4], tmp_path, study={
        "name": "tpe2", "search": "tpe", "search_space": {"train.mix": {"choice": ["ao", "cs"]},
                                                          "train.temperature": {"loguniform": [0.05, 0.5]}}})
    assert "![search](search.png)" in build_report(uri, "tpe2", tmp_path / "rep2").read_text()
