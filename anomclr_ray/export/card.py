"""The model card of an exported scorer: what it is for, what it was trained on, where it came from,
how well it did (per signal, with its seeds), the domain it is valid in, and the caveats."""

from __future__ import annotations

from ..events import layout as L
from .scorer import Scorer


def model_card(scorer: Scorer, run_name: str, run_id: str, metrics: dict[str, float], params: dict[str, str],
               study_yaml: str | None, commit: str | None) -> str:
    """Markdown: the card of `scorer`, exported from trial run `run_name` (`run_id`) with its MLflow
    `metrics` and `params`, its study's config, and the git commit it ran at."""
    info = scorer.info
    rows = [f"| {L.SIGNAL_TEXT[s]} | {metrics.get(f'auc/{s}', float('nan')):.3f} ± {metrics.get(f'auc_std/{s}', 0):.3f} "
            f"| {metrics.get(f'si/{s}', float('nan')):.2f} ± {metrics.get(f'si_std/{s}', 0):.2f} |"
            for s in L.SIGNALS if f"auc/{s}" in metrics]
    prov = scorer.domain.provenance
    lines = [
        f"# Model card: the anomaly score of trial `{run_name}`", "",
        "## Intended use", "",
        "A model-agnostic anomaly score for LHC collision events in the CMS ADC2021 layout, for a search "
        "for new physics without a signal hypothesis: events of a data set are ranked by how badly an "
        f"autoencoder ensemble ({len(scorer.autoencoders)} AEs) trained on background reconstructs "
        + ("their raw preprocessed features (AE-Raw)." if scorer.encoder is None else
           f"their representation from a `{scorer.method}` contrastive encoder.")
        + " Higher is more anomalous; the spread over the AEs says how much the ensemble agrees. It is not a "
        "classifier for any one signal and not a calibrated probability.", "",
        "## Training data", "",
        f"- {scorer.domain.events} background events (the encoder's and the AE's training events) from "
        f"`{prov.get('source', '?')}`",
        f"- generator: {prov.get('generator', 'unknown')}; config hash {prov.get('config_hash', '—')}",
        f"- files (sha256): " + ", ".join(f"`{k}` {v[:16]}…" for k, v in (prov.get("sha256") or {}).items()), "",
        "## Where it came from", "",
        f"- study `{info.get('study')}`, trial `{run_name}` (MLflow run `{run_id}`, Tune trial `{info.get('trial')}`), "
        f"git commit `{commit or 'unknown'}`",
        f"- encoder seed {info.get('train_seed')}, {info.get('epochs')} epochs; AE seeds {info.get('ae_seeds')}",
        "- the trial's settings: " + ", ".join(f"`{k}` = {v}" for k, v in sorted(params.items())
                                               if k.split(".")[0] in ("method", "train", "model", "score")
                                               and not k.startswith("score.nplm")), "",
        "## Performance on the study's test events", "",
        "Mean ± std over the AE seeds (one encoder seed); SI = ε_S/√ε_B at ε_S = "
        f"{params.get('eps_s', '0.3')}.", "",
        "| signal | AUC | SI |", "| --- | --- | --- |", *rows, "",
        "## Validity domain", "",
        "Read off the training events: it says how events were *defined*, not how typical they are. An "
        "event with more leptons, jets or MET than the background ever had is inside (that is an anomaly); "
        "an event the training events could not contain is outside, and its score means nothing:", "",
        *(f"- {line}" for line in scorer.domain.describe()), "",
        "Held-out background score quantiles (the reference a file's report compares with): "
        + ", ".join(f"{q:g}: {v:.4g}" for q, v in sorted(scorer.reference.items())) + ".", "",
        "## Caveats", "",
        "- Trained on a simulation (see the generator above): on other data (the published ADC2021 files, "
        "real collisions) the score's scale and the background's quantiles move even inside the domain; "
        "calibrate the threshold on a background-like control sample of that data first.",
        "- Object definitions, pile-up and the trigger must match the domain; `anomclr apply` flags each "
        "event that crosses a boundary and `--strict` refuses a file with too many of them.",
        "- Units are GeV; a file in MeV crosses the beam-energy boundary.",
        "- The performance above is at this study's size and seeds: a single encoder seed; the spread over "
        "encoder seeds is larger than over AE seeds.", "",
    ]
    if study_yaml:
        lines += ["## The study's config (study.yaml)", "", "```yaml", study_yaml.rstrip(), "```", ""]
    return "\n".join(lines)
