"""From inputs to per-signal metrics: fit the autoencoder on background, score the test sets.

Inputs are either encoder representations or, for AE-Raw, preprocessed raw events flattened. Several
AE seeds give mean and std of every metric (the paper's error bars combine CLR and AE seeds).

Besides the per-signal metrics, every evaluation computes signal-free ones: the same AEs score held-out
background events against their own anomaly-augmented views (`proxy_views`, one fixed generator for every
trial), AUC and SI per augmentation mix (`names.proxy_key`). A search can choose on them without a label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..events.dataset import DataConfig, Dataset
from ..events.preprocess import N_KINEMATIC, Preprocessor
from ..nplm import nplm_test
from .augment import anomalous, mixes
from .metrics import EPS_S, Roc, roc, signal_metrics
from .model import represent
from .names import MEAN, PROBE_ACCURACY, PROXY_METRICS, SIGNAL_METRICS, mean_metrics, metric_key, proxy_key
from .score import ScoreConfig, fit_autoencoders


AE_SEEDS = (0, 1, 2)  # AEs per input (a trial, `anomclr score`): mean and std of every metric over them


@dataclass(frozen=True)
class ScoreJob:
    """What `anomclr score` runs (its config.yaml): the events, the AE, its seeds (mean and std of every
    metric over them) and the signal efficiency of SI and eps_B."""

    data: DataConfig = field(default_factory=DataConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    ae_seeds: tuple[int, ...] = AE_SEEDS
    eps_s: float = EPS_S

    def __post_init__(self):
        if not self.ae_seeds:
            raise ConfigError("ScoreJob.ae_seeds: at least one AE seed is needed")
        if not 0 < self.eps_s < 1:
            raise ConfigError(f"ScoreJob.eps_s must be in (0, 1), got {self.eps_s}")


Metrics = dict[str, dict[str, list[float]]]  # signal -> metric name -> values over AE seeds


@dataclass
class Evaluation:
    """metrics[signal][name] = test values over AE seeds; curves[signal] = test ROC of the first seed;
    validation: the same metrics on the validation set, when there is one; proxy[mix][name]: the same
    metrics of held-out background against its views under an anomaly augmentation mix (no signal)."""

    metrics: Metrics
    curves: dict[str, Roc]
    validation: Metrics = field(default_factory=dict)
    proxy: Metrics = field(default_factory=dict)
    probe_accuracy: float | None = None  # `linear_probe` on the test background, when it has labels
    nplm: dict[str, float] = field(default_factory=dict)  # `NPLMResult.metrics()` with score.nplm, else empty
    autoencoders: list = field(default_factory=list, repr=False)  # the fitted AEs, one per seed (a scorer's)

    def summary(self) -> dict[str, dict[str, float]]:
        """{signal: {name: mean, name_std: std}} on the test set."""
        return _summary(self.metrics)

    def flat_metrics(self) -> dict[str, float]:
        """MLflow / Tune metrics (keys: `names.metric_key`): per signal, mean and std over AE seeds,
        means over the signals; with a validation set, the same on it; the signal-free metrics per mix
        (means over AE seeds); the probe's accuracy; NPLM's power and median Z per signal and injection."""
        proxy = {proxy_key(name, mix): float(np.mean(m[metric])) for mix, m in self.proxy.items()
                 for name, metric in PROXY_METRICS.items()}
        return {**_flat(self.metrics, False), **(_flat(self.validation, True) if self.validation else {}), **proxy,
                **({} if self.probe_accuracy is None else {PROBE_ACCURACY: self.probe_accuracy}), **self.nplm}


def _summary(metrics: Metrics) -> dict[str, dict[str, float]]:
    out = {}
    for sig, m in metrics.items():
        out[sig] = {}
        for k, v in m.items():
            out[sig][k] = float(np.mean(v))
            out[sig][f"{k}_std"] = float(np.std(v))
    return out


def _flat(metrics: Metrics, validation: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    summary = _summary(metrics)
    for sig, m in summary.items():
        for name in SIGNAL_METRICS:
            out[metric_key(name, sig, validation=validation)] = m[name]
            out[metric_key(name, sig, std=True, validation=validation)] = m[f"{name}_std"]
    for name in mean_metrics():
        out[metric_key(name, MEAN, validation=validation)] = float(np.mean([m[name] for m in summary.values()]))
    return out


def ae_inputs(pre: Preprocessor, model: torch.nn.Module | None = None, device: torch.device | None = None,
              one_hot: bool = False) -> Callable[[np.ndarray], torch.Tensor]:
    """events -> what the AE is trained and scored on: the representations of `model` (an encoder, with
    its preprocessing `pre`, on `device`), or without a model AE-Raw's `raw_inputs`. What a study's trial
    and `anomclr score` / `anomclr nplm` evaluate."""
    if model is None:
        return lambda events: raw_inputs(pre, events, one_hot)
    return lambda events: represent(model, pre, events, device)


def raw_inputs(pre: Preprocessor, events: np.ndarray, one_hot: bool = False) -> torch.Tensor:
    """AE-Raw inputs: the shared preprocessing (pT and MET over the background's mean object pT, eta / 4,
    phi / pi, empty slots zero), flattened: the kinematic features (N, 19 * 3), or with the one-hot
    object type (N, 19 * 7)."""
    x = pre(events)
    return (x if one_hot else x[..., :N_KINEMATIC]).flatten(1)


PROXY_SEED = 2021  # the generator of the proxy views: the same for every trial, so that trials compare
PROXY_EVENTS = 10_000  # held-out background events the proxy metrics use (and as many views per mix)


def proxy_views(background: np.ndarray, seed: int = PROXY_SEED) -> dict[str, np.ndarray]:
    """{mix: every event of `background` under one anomaly augmentation of the mix} for each mix of
    `augment.mixes()`: the anomalies AnomCLR trains against, drawn with a fixed generator per mix."""
    x = torch.as_tensor(background)
    return {mix: anomalous(x, mix, torch.Generator().manual_seed(seed)).numpy() for mix in mixes()}


def evaluate(train: torch.Tensor, test_background: torch.Tensor, test_signals: dict[str, torch.Tensor],
             cfg: ScoreConfig, seeds: tuple[int, ...] = AE_SEEDS, eps_s: float = EPS_S,
             validation: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None,
             proxy: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None) -> Evaluation:
    """An AE per seed on `train` (background inputs; the seeds' AEs train together as one batched
    ensemble), metrics per signal on the test inputs and, given `validation` = (background, {signal:
    inputs}), on those with the same AEs; given `proxy` = (held-out background, {mix: its augmented
    views}), the same metrics per mix."""
    sets = {"test": (test_background, test_signals), **({"val": validation} if validation else {}),
            **({"proxy": proxy} if proxy else {})}
    metrics: dict[str, Metrics] = {k: {s: {} for s in sigs} for k, (_, sigs) in sets.items()}
    curves: dict[str, Roc] = {}
    fits = fit_autoencoders(train, cfg, [torch.Generator().manual_seed(seed) for seed in seeds])
    for k, (ae, _) in enumerate(fits):
        for name, (background, signals) in sets.items():
            bkg = ae.score(background).numpy()
            for sig, x in signals.items():
                s = ae.score(x).numpy()
                for metric, value in signal_metrics(bkg, s, eps_s).items():
                    metrics[name][sig].setdefault(metric, []).append(value)
                if k == 0 and name == "test":
                    curves[sig] = roc(bkg, s)
    return Evaluation(metrics["test"], curves, metrics.get("val", {}), metrics.get("proxy", {}),
                      autoencoders=[ae.cpu() for ae, _ in fits])


def linear_probe(train: torch.Tensor, train_labels: np.ndarray, test: torch.Tensor, test_labels: np.ndarray,
                 l2: float = 1e-4, steps: int = 100) -> float:
    """Held-out accuracy of a multinomial logistic regression on frozen representations (N, D), fitted on
    `train` (standardised with its mean and std) to the process labels: how much of the background's
    structure an embedding keeps (Metzger et al.'s probe). Full-batch L-BFGS from zero weights, so the
    same inputs give the same number."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    x, xt = (train.double() - mean) / std, (test.double() - mean) / std
    y = torch.as_tensor(train_labels, dtype=torch.long)
    classes = int(max(y.max(), int(np.max(test_labels)))) + 1
    w = torch.zeros(x.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(x @ w[:-1] + w[-1], y) + l2 * w[:-1].square().sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        predicted = (xt @ w[:-1] + w[-1]).argmax(1).numpy()
    return float((predicted == np.asarray(test_labels)).mean())


def evaluate_splits(embed: Callable[[np.ndarray], torch.Tensor], data: Dataset, cfg: ScoreConfig,
                    seeds: tuple[int, ...] = AE_SEEDS, eps_s: float = EPS_S) -> Evaluation:
    """The evaluation of trials and of `anomclr score`: every split of `data` embedded once (`embed`:
    events -> AE inputs, e.g. an encoder's representations or `raw_inputs`), then `evaluate` (the AE
    trained on `data.ae_events`: the encoder's events unless the config sets n_ae), on the
    validation split too when `data` has one, the signal-free metrics on the first `PROXY_EVENTS` events
    of the validation background (else of the test background) and their `proxy_views`, the linear probe
    when `data` has process labels, and NPLM on the test split (its background and signals as the toys'
    pools) with `cfg.nplm`."""
    validation = None if data.val_background is None else (
        embed(data.val_background), {s: embed(x) for s, x in data.val_signals.items()})
    ae_events, ae_labels = data.ae_events
    train, test = embed(ae_events), embed(data.test_background)
    test_signals = {s: embed(x) for s, x in data.test_signals.items()}
    held_out = data.test_background if validation is None else data.val_background
    proxy = ((test if validation is None else validation[0])[:PROXY_EVENTS],
             {mix: embed(x) for mix, x in proxy_views(held_out[:PROXY_EVENTS]).items()})
    ev = evaluate(train, test, test_signals, cfg, seeds, eps_s, validation, proxy)
    if ae_labels is not None and data.test_labels is not None:
        ev.probe_accuracy = linear_probe(train, ae_labels, test, data.test_labels)
    if cfg.nplm is not None:
        ev.nplm = nplm_test(test, test_signals, cfg.nplm).metrics()
    return ev
