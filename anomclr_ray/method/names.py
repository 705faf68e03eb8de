"""The study layer's vocabulary, declared once (as events/layout.py declares the slots): the methods a
trial can run, each with its label and colour, and the grammar of the metric keys trials log.

Metric keys: `<name>/<signal>` is a test-set metric (the mean over AE seeds), `<name>_std/<signal>`
its std over AE seeds, `<name>/mean` the mean over the signals (AUC and SI only); on the validation set
the same keys carry the prefix `val_` (`val_auc/mean`). `metric_key` builds a key and
`parse_metric_key` reads one back: no other module spells them. The signal-free metrics are
`proxy_auc/<mix>` and `proxy_si/<mix>` (`proxy_key`): held-out background against its views under an
anomaly augmentation mix (`augment.mixes()`), no signal involved.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..events import layout as L
from .augment import mixes
from .losses import LOSSES
from .metrics import SIGNAL_METRICS as _SIGNAL_METRICS

BASELINE = "ae_raw"  # the autoencoder on the preprocessed raw events: no encoder
METHOD_KEY = "method"  # the search-space key (and MLflow param) that chooses a trial's method
EPS_S_KEY = "eps_s"  # the MLflow param of a trial: the signal efficiency its SI and eps_B were taken at


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # in figures and tables
    color: str  # one colour per method in every figure

    @property
    def contrastive(self) -> bool:
        """Pretrains an encoder with this loss (else: the raw-input baseline)."""
        return self.name in LOSSES


def methods() -> dict[str, Method]:
    """The AE-Raw baseline, then every contrastive loss of `losses.LOSSES` (its label and colour there)."""
    return {BASELINE: Method(BASELINE, "AE-Raw", "#444444"),
            **{name: Method(name, loss.label, loss.color) for name, loss in LOSSES.items()}}


def method(name: str) -> Method:
    if name not in (known := methods()):
        raise ConfigError(f"unknown method {name!r}: expected one of {', '.join(known)}")
    return known[name]


def labels_needed(method_name: str) -> str | None:
    """What, in a trial of `method_name`, needs the background's process labels (said in the error when
    the data has none), or None."""
    return f"train.loss {method_name}" if method_name in LOSSES and LOSSES[method_name].labels else None


def applies(method_name: str, key: str) -> bool:
    """Whether a config key (`<section>.<field>`) changes what `method_name` computes. The raw-input
    baseline has no encoder: the model's and its training's keys do not apply to it, but for
    `train.seed`, which seeds its AEs."""
    return method_name != BASELINE or not key.startswith(("model.", "train.")) or key == "train.seed"


def method_label(name: str) -> str:
    """A method's label; a name this version does not know (an older run) stays as it is."""
    known = methods().get(name)
    return known.label if known else name


def method_color(name: str, default: str | None = None) -> str | None:
    known = methods().get(name)
    return known.color if known else default


PROBE_ACCURACY = "probe/accuracy"  # the linear probe's held-out accuracy on the process labels (no signal)
SIGNAL_METRICS = _SIGNAL_METRICS  # per signal: metrics.SIGNAL_METRICS itself, so that an entry added there counts


def mean_metrics() -> tuple[str, ...]:
    """The per-signal metrics also averaged over the signals (`<name>/mean`)."""
    return tuple(n for n, m in SIGNAL_METRICS.items() if m.mean)


MEAN = "mean"
_STD, _VALIDATION = "_std", "val_"


@dataclass(frozen=True)
class MetricKey:
    name: str  # one of SIGNAL_METRICS
    signal: str  # a signal of events.layout, or MEAN
    std: bool = False  # the std over AE seeds
    validation: bool = False  # on the validation set

    def __post_init__(self):
        if self.name not in SIGNAL_METRICS:
            raise ConfigError(f"metric {self.name!r}: expected one of {', '.join(SIGNAL_METRICS)}")
        if self.signal == MEAN:
            if self.name not in mean_metrics() or self.std:
                raise ConfigError(f"metric {self.name}{_STD if self.std else ''}/{MEAN}: only "
                                 f"{', '.join(mean_metrics())} have a mean over signals (and no std)")
        elif self.signal not in L.SIGNALS:
            raise ConfigError(f"signal {self.signal!r}: expected one of {', '.join(L.SIGNALS)} or {MEAN}")

    def __str__(self) -> str:
        return f"{_VALIDATION if self.validation else ''}{self.name}{_STD if self.std else ''}/{self.signal}"


def metric_key(name: str, signal: str, *, std: bool = False, validation: bool = False) -> str:
    """`metric_key("auc", "ato4l")` -> "auc/ato4l"; `metric_key("auc", MEAN, validation=True)` -> "val_auc/mean"."""
    return str(MetricKey(name, signal, std, validation))


def parse_metric_key(key: str) -> MetricKey:
    """The inverse of `metric_key`; a ValueError names what is not a metric key."""
    head, sep, signal = key.partition("/")
    validation = head.startswith(_VALIDATION)
    head = head.removeprefix(_VALIDATION) if validation else head
    std = head.endswith(_STD)
    try:
        if not sep:
            raise ConfigError("no '/'")
        return MetricKey(head.removesuffix(_STD) if std else head, signal, std, validation)
    except ValueError as err:
        raise ConfigError(f"{key!r} is not a metric key (<name>/<signal>, e.g. auc/ato4l, val_auc/mean): {err}") from None


NPLM_POWER, NPLM_Z = "nplm_power", "nplm_z"  # NPLM: P(Z > 3) and median Z per signal and injection fraction
NPLM_NULL_DOF = "nplm/null_dof"  # the degrees of freedom of the chi2 fitted to the null toys


def nplm_key(name: str, signal: str, fraction: float) -> str:
    """`nplm_key(NPLM_POWER, "ato4l", 0.005)` -> "nplm_power/ato4l/0.005"."""
    if name not in (NPLM_POWER, NPLM_Z):
        raise ConfigError(f"NPLM metric {name!r}: expected {NPLM_POWER} or {NPLM_Z}")
    if signal not in L.SIGNALS:
        raise ConfigError(f"signal {signal!r}: expected one of {', '.join(L.SIGNALS)}")
    return f"{name}/{signal}/{fraction:g}"


def parse_nplm_key(key: str) -> tuple[str, str, float] | None:
    """(name, signal, fraction) of an `nplm_key`, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] not in (NPLM_POWER, NPLM_Z) or parts[1] not in L.SIGNALS:
        return None
    try:
        return parts[0], parts[1], float(parts[2])
    except ValueError:
        return None


PROXY_METRICS = {"proxy_auc": "auc", "proxy_si": "si"}  # signal-free: name -> the metrics.signal_metrics entry
PROXY_DEFAULT = "proxy_auc/all"  # the signal-free objective (`studies/hpo.py --objective proxy`)


def proxy_key(name: str, mix: str) -> str:
    """`proxy_key("proxy_auc", "all")` -> "proxy_auc/all"."""
    if name not in PROXY_METRICS:
        raise ConfigError(f"signal-free metric {name!r}: expected one of {', '.join(PROXY_METRICS)}")
    if mix not in mixes():
        raise ConfigError(f"signal-free metric {name}/{mix}: the mix must be one of {', '.join(mixes())}")
    return f"{name}/{mix}"


def parse_proxy_key(key: str) -> tuple[str, str] | None:
    """(name, mix) of a `proxy_key`, or None for any other key."""
    name, sep, mix = key.partition("/")
    return (name, mix) if sep and name in PROXY_METRICS and mix in mixes() else None


def check_objective(key: str) -> str:
    """`key` if it is a metric key or a signal-free key; else a ValueError that shows both grammars."""
    if parse_proxy_key(key) is None:
        try:
            parse_metric_key(key)
        except ValueError as err:
            raise ConfigError(f"{err}; or a signal-free metric: {', '.join(PROXY_METRICS)} per mix, e.g. "
                             f"{PROXY_DEFAULT}") from None
    return key


def objective_keys(signals: tuple[str, ...], validation: bool) -> set[str]:
    """What a study can maximise: AUC or SI per signal or their mean, on the test set and, with a
    validation set, on it; or a signal-free metric (every trial logs them)."""
    return {metric_key(m, s, validation=v) for v in ((False, True) if validation else (False,))
            for m in mean_metrics() for s in (*signals, MEAN)} | {proxy_key(n, x) for n in PROXY_METRICS
                                                                  for x in mixes()}
