"""A trial's anomaly score as files: the preprocessing, the encoder (none for AE-Raw), the AE ensemble,
the validity domain and the training background's score quantiles. Small (state dicts and JSON; no
pickled objects, no optimiser state), written by every finished trial as MLflow artifacts (`SCORER_DIR`)
and read back by `anomclr export` / `apply` and the MLflow model without retraining.

The score of an event is the mean over the ensemble's AEs of their reconstruction MSE, its spread their
std: per event, so any batch size or order gives the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..configs import from_plain, to_plain
from ..errors import ConfigError
from ..events.preprocess import Preprocessor
from ..method.evaluate import ae_inputs
from ..method.model import ModelConfig, build_encoder
from ..method.score import AutoEncoder, ScoreConfig
from .domain import Domain

SCORER_DIR = "scorer"  # the artifact folder of a trial's run
FORMAT = 1  # of scorer.json; a scorer of another format is refused with the version that wrote it
QUANTILES = (0.5, 0.9, 0.99, 0.999)  # of the training background's score, for a file's report


@dataclass
class Scorer:
    method: str
    pre: Preprocessor
    encoder: torch.nn.Module | None  # None: AE-Raw, the AEs read the preprocessed raw events
    autoencoders: list[AutoEncoder]
    score: ScoreConfig
    domain: Domain
    reference: dict[str, float]  # {quantile: score} of the held-out training background
    info: dict  # where it came from: study, trial, run, metrics, seeds

    def inputs(self, events: np.ndarray, device: torch.device) -> torch.Tensor:
        model = None if self.encoder is None else self.encoder.to(device)
        return ae_inputs(self.pre, model, device, one_hot=self.score.raw_one_hot)(events)

    def scores(self, events: np.ndarray, device: torch.device = torch.device("cpu"),
               batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """(score, spread) (N,) of events (N, 19, 4) in GeV: the mean and std over the AEs of each AE's
        reconstruction MSE."""
        out = []
        for chunk in np.array_split(events, max(1, -(-len(events) // batch_size))):
            x = self.inputs(chunk, device).cpu()
            out.append(torch.stack([ae.cpu().score(x) for ae in self.autoencoders]))
        mse = torch.cat(out, dim=1).double().numpy() if out else np.zeros((len(self.autoencoders), 0))
        return mse.mean(0), mse.std(0)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "anomclr_version": __version__, "method": self.method,
                "preprocessor": to_plain(self.pre), "score": to_plain(self.score),
                "model": None if self.encoder is None else to_plain(self.encoder.cfg),
                "input_dim": self.autoencoders[0].mean.shape[0], "domain": to_plain(self.domain),
                "reference": {str(q): v for q, v in self.reference.items()}, "info": self.info}
        (directory / "scorer.json").write_text(json.dumps(meta, indent=1, default=str))
        torch.save([ae.state_dict() for ae in self.autoencoders], directory / "autoencoders.pt")
        if self.encoder is not None:
            torch.save(self.encoder.state_dict(), directory / "encoder.pt")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: torch.device = torch.device("cpu")) -> Scorer:
        directory = Path(directory)
        if not (directory / "scorer.json").exists():
            raise ConfigError(f"{directory}: no scorer.json (not a scorer written by anomclr-ray)")
        meta = json.loads((directory / "scorer.json").read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{directory}: a scorer of format {meta.get('format')} (written by anomclr-ray "
                              f"{meta.get('anomclr_version')}); this version {__version__} reads format {FORMAT}")
        score = from_plain(ScoreConfig, meta["score"], f"{directory}: score")
        autoencoders = []
        for state in torch.load(directory / "autoencoders.pt", map_location="cpu", weights_only=True):
            ae = AutoEncoder(meta["input_dim"], score)
            ae.load_state_dict(state)
            autoencoders.append(ae.eval())
        encoder = None
        if meta["model"] is not None:
            encoder = build_encoder(from_plain(ModelConfig, meta["model"], f"{directory}: model"))
            encoder.load_state_dict(torch.load(directory / "encoder.pt", map_location="cpu", weights_only=True))
            encoder = encoder.to(device).eval()
        return cls(meta["method"], from_plain(Preprocessor, meta["preprocessor"]), encoder, autoencoders, score,
                   from_plain(Domain, meta["domain"]), {float(q): v for q, v in meta["reference"].items()},
                   meta["info"])
