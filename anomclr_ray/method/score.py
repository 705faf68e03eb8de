"""Anomaly scoring: an autoencoder trained on background inputs; score = per-event reconstruction MSE.

Inputs are CLR representations (B, D) or, for the AE-Raw baseline, the preprocessed raw events
flattened: (pT, eta, phi) of the 19 slots, (B, 57), or with the one-hot object type (B, 133). As the
paper has it, the AE sees its inputs as they are; `ScoreConfig.standardise` divides each input by its
training std after subtracting its mean (kept in the model), a different baseline (docs/method.md).
The published AE: 256-128-64-32-16 -> bottleneck -> mirrored, LeakyReLU, Adam 1e-3, 100 epochs, batch
4096, no regularisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..events import layout as L
from ..events.preprocess import N_INPUT_FEATURES, N_KINEMATIC
from ..nplm import NPLMConfig


@dataclass(frozen=True)
class ScoreConfig:
    """Autoencoder: MLP `hidden` -> `bottleneck` -> mirrored decoder, LeakyReLU, Adam, MSE."""

    bottleneck: int = 5
    hidden: tuple[int, ...] = (256, 128, 64, 32, 16)
    learning_rate: float = 1e-3
    epochs: int = 100
    batch_size: int = 4096
    # early stopping on the background validation split (the best epoch's weights); None: every epoch
    # runs and the last weights are kept, as published
    patience: int | None = None
    validation_fraction: float = 0.2
    # each input minus its training mean over its training std: turns AE-Raw into a detector of rarely
    # filled slots (docs/method.md); off as in the paper
    standardise: bool = False
    # AE-Raw's inputs: the 57 kinematic features (pT, eta, phi per slot), or with the one-hot type (133)
    raw_one_hot: bool = False
    # the signal-agnostic test on the same inputs (the test split's background and signals as its pools);
    # None: off. `--set score.nplm.toys=20` turns it on.
    nplm: NPLMConfig | None = None

    def __post_init__(self):
        if self.bottleneck < 1:
            raise ConfigError(f"ScoreConfig.bottleneck must be >= 1, got {self.bottleneck}")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"ScoreConfig.validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.learning_rate <= 0 or self.epochs < 1 or self.batch_size < 1 or (self.patience or 1) < 1:
            raise ConfigError("ScoreConfig: learning_rate, epochs, batch_size and patience must be positive")

    @property
    def raw_dim(self) -> int:
        """The width of AE-Raw's inputs: 19 slots x (pT, eta, phi [+ one-hot type])."""
        return L.N_SLOTS * (N_INPUT_FEATURES if self.raw_one_hot else N_KINEMATIC)

    def check_training_events(self, n: int) -> None:
        """The AE fits on `n` events less its validation fraction: a batch must fit in them."""
        n_fit = n - max(1, int(n * self.validation_fraction))
        if self.batch_size > n_fit:
            raise ConfigError(f"ScoreConfig.batch_size ({self.batch_size}) is larger than the {n_fit} training events "
                             f"of the AE ({n} less the validation fraction {self.validation_fraction}): lower "
                             "score.batch_size")

    def check_input_dim(self, input_dim: int) -> None:
        if self.bottleneck >= input_dim:
            raise ConfigError(f"ScoreConfig.bottleneck ({self.bottleneck}) must be smaller than the input "
                             f"dimension ({input_dim})")


class AutoEncoder(nn.Module):
    def __init__(self, input_dim: int, cfg: ScoreConfig = ScoreConfig()):
        super().__init__()
        cfg.check_input_dim(input_dim)
        widths = [input_dim, *cfg.hidden, cfg.bottleneck]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.LeakyReLU()]
        dec: list[nn.Module] = []
        back = widths[::-1]
        for a, b in zip(back[:-1], back[1:]):
            dec += [nn.Linear(a, b), nn.LeakyReLU()]
        self.encoder = nn.Sequential(*enc[:-1])  # linear bottleneck
        self.decoder = nn.Sequential(*dec[:-1])  # linear output
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return self.decoder(self.encoder(z))

    def score(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Per-event MSE between the (standardised, if so configured) input and its reconstruction, (B,)."""
        self.eval()
        out = []
        with torch.no_grad():
            for chunk in x.split(batch_size):
                z = (chunk - self.mean) / self.std
                out.append(((self.decoder(self.encoder(z)) - z) ** 2).mean(1))
        return torch.cat(out)


def fit_autoencoder(x: torch.Tensor, cfg: ScoreConfig, generator: torch.Generator) -> tuple[AutoEncoder, list[float]]:
    """Train on background inputs x (N, D) with early stopping; returns the best model and val losses."""
    (ae, history), = fit_autoencoders(x, cfg, [generator])
    return ae, history


def fit_autoencoders(x: torch.Tensor, cfg: ScoreConfig, generators: list[torch.Generator]
                     ) -> list[tuple[AutoEncoder, list[float]]]:
    """One autoencoder per generator on background inputs x (N, D), trained together as one batched
    ensemble (`_Ensemble`: one batched matrix product per layer for all members) with the arithmetic of
    separate fits: each member draws its validation split, initial weights and batch order from its own
    generator, has its own Adam state, stops on its own validation loss (`cfg.patience`) and returns
    its best weights. Returns (model, validation losses per epoch) per generator."""
    cfg.check_training_events(len(x))
    n_val = max(1, int(len(x) * cfg.validation_fraction))
    members, train, val = [], [], []
    for g in generators:
        perm = torch.randperm(len(x), generator=g, device="cpu").to(x.device)
        v, t = x[perm[:n_val]], x[perm[n_val:]]
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))  # weight init
        ae = AutoEncoder(x.shape[1], cfg).to(x.device)
        if cfg.standardise:
            ae.mean.copy_(t.mean(0))
            ae.std.copy_(t.std(0).clamp(min=1e-6))
        members.append(ae)
        train.append((t - ae.mean) / ae.std)
        val.append((v - ae.mean) / ae.std)
    ensemble = _Ensemble(members)
    train_z, val_z = torch.stack(train), torch.stack(val)  # (K, n, D), standardised per member
    opt = torch.optim.Adam(ensemble.parameters(), lr=cfg.learning_rate)
    k = len(members)
    best, best_state, stale = [float("inf")] * k, [None] * k, [0] * k
    history: list[list[float]] = [[] for _ in members]
    active = list(range(k))
    for _ in range(cfg.epochs):
        ensemble.train()
        orders = torch.stack([torch.randperm(train_z.shape[1], generator=g, device="cpu") for g in generators])
        for idx in orders.to(x.device).split(cfg.batch_size, dim=1):
            z = torch.gather(train_z, 1, idx[..., None].expand(-1, -1, train_z.shape[2]))
            loss = ((ensemble(z) - z) ** 2).mean((1, 2)).sum()  # members' losses are independent
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = ensemble.score(val_z).mean(1).tolist()
        for m in list(active):
            history[m].append(v[m])
            if cfg.patience is None:
                continue
            if v[m] < best[m] - 1e-6:
                best[m], best_state[m], stale[m] = v[m], ensemble.member_state(m), 0
            else:
                stale[m] += 1
                if stale[m] >= cfg.patience:
                    active.remove(m)
        if not active:
            break
    for m, ae in enumerate(members):
        ensemble.load_member(m, ensemble.member_state(m) if cfg.patience is None else best_state[m], ae)
    return list(zip(members, history))


class _Ensemble(nn.Module):
    """K autoencoders of one shape as one batched MLP on standardised inputs (K, n, D): weights (K, in,
    out) per layer, `torch.baddbmm`; activations where the members have them (linear bottleneck and
    output). Trains the members' copies; `load_member` writes one member's weights back into its model."""

    def __init__(self, members: list[AutoEncoder]):
        super().__init__()
        layers = [[m for m in ae.modules() if isinstance(m, nn.Linear)] for ae in members]
        self.weights = nn.ParameterList(nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in layers]))
                                        for i in range(len(layers[0])))
        self.biases = nn.ParameterList(nn.Parameter(torch.stack([ls[i].bias.detach()[None] for ls in layers]))
                                       for i in range(len(layers[0])))
        n_encoder = sum(isinstance(m, nn.Linear) for m in members[0].encoder)
        self.linear_after = {n_encoder - 1, len(self.weights) - 1}  # bottleneck and output: no activation
        self.activation = nn.LeakyReLU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, z, w)
            if i not in self.linear_after:
                z = self.activation(z)
        return z

    @torch.no_grad()
    def score(self, z: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """(K, n) per-event MSE of standardised inputs (K, n, D)."""
        self.eval()
        return torch.cat([((self(c) - c) ** 2).mean(2) for c in z.split(batch_size, dim=1)], dim=1)

    def member_state(self, m: int) -> list[torch.Tensor]:
        return [p[m].detach().clone() for p in (*self.weights, *self.biases)]

    @torch.no_grad()
    def load_member(self, m: int, state: list[torch.Tensor], ae: AutoEncoder) -> None:
        linears = [x for x in ae.modules() if isinstance(x, nn.Linear)]
        weights, biases = state[:len(linears)], state[len(linears):]
        for lin, w, b in zip(linears, weights, biases):
            lin.weight.copy_(w.T)
            lin.bias.copy_(b[0])
