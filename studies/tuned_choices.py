"""Each method's choice from its own search (`hpo.py --method M`), as the per-method settings a study
runs with (`StudyConfig.method_settings`): the trial with the best objective, its searched values.

    python studies/tuned_choices.py --objective proxy      # reads docs/tuned/hpo_proxy_<method>.csv
    python studies/loss_comparison.py --method-settings docs/tuned/choices_proxy.yaml
    python studies/tuned_choices.py --objective validation # reads docs/tuned/hpo_<method>.csv (val_auc/mean)

The searches' trials are read from their report tables (`anomclr report` writes trials.csv; the copies
in docs/tuned/ because a study store does not outlive a session here), so the choice is made by this
rule and recorded before any study at the choices scores a test signal.
"""

import argparse
import csv
from pathlib import Path

import yaml

from anomclr_ray import study_script
from anomclr_ray.errors import DataError, MissingFileError
from anomclr_ray.method.names import METHOD_KEY
from hpo import METHODS, OBJECTIVES, method_space

TUNED = Path(__file__).resolve().parent.parent / "docs" / "tuned"


def choice(table: Path, method: str, objective: str) -> tuple[dict, dict]:
    """({search-space key: value}, its row) of the trial in `table` with the highest `objective`."""
    if not table.is_file():
        raise MissingFileError(f"{table}: no such trial table (`anomclr report` writes trials.csv)")
    with open(table, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(f"metrics.{objective}")]
    if not rows:
        raise DataError(f"{table}: no trial with metrics.{objective}")
    best = max(rows, key=lambda r: float(r[f"metrics.{objective}"]))
    keys = [k for k in method_space(method)[0] if k != METHOD_KEY]
    return {k: yaml.safe_load(best[f"params.{k}"]) for k in keys}, best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objective", choices=OBJECTIVES, default="proxy")
    p.add_argument("--tables", type=Path, default=TUNED, help="folder of hpo_proxy_<method>.csv, hpo_<method>.csv")
    p.add_argument("--out", type=Path, default=None, help="default: <tables>/choices_<objective>.yaml")
    args = p.parse_args()
    study, metric = "hpo" if args.objective == "validation" else "hpo_proxy", OBJECTIVES[args.objective]
    header, chosen = [f"# each method's choice of `hpo.py --objective {args.objective} --method M` (studies/tuned_choices.py)"], {}
    for m in METHODS:
        chosen[m], row = choice(args.tables / f"{study}_{m}.csv", m, metric)
        header.append(f"# {m}: trial {row['run_name']!r}, {metric} {float(row[f'metrics.{metric}']):.4f}")
    out = args.out or args.tables / f"choices_{args.objective}.yaml"
    out.write_text("\n".join(header) + "\n" + yaml.safe_dump(chosen, sort_keys=False))
    print(out.read_text())


if __name__ == "__main__":
    study_script.entry(main)
