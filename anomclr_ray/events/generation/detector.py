"""A parametric CMS-like detector response and the ADC2021 selection, vectorised over many events.

Input: the final-state particles of a batch of Pythia events (with overlaid pile-up, pileup.py) as flat
arrays plus per-event counts. Output: the batch's events in the ADC2021 layout (n_pass, 19, 4) and which
events passed.

Reconstruction, in the spirit of Delphes' CMS cards, calibrated to the published files (docs/data.md;
`CALIBRATION` says which published fact each default follows):
- electrons / muons: generator leptons of the hard event inside the tracker acceptance, an efficiency
  that depends on pT and eta with a turn-on at low pT, a relative pT resolution; no isolation on the
  stored leptons (optional); removed from the jet inputs, as Delphes' unique-object finder does;
- the trigger: a lepton above 23 GeV whose relative isolation (sum pT of the other particles within
  dR < 0.3 over its pT) is below `trigger_iso_max`;
- jets: anti-kT R = 0.4 (FastJet) on the other visible particles with |eta| < 5, pile-up removed as
  `jet_pileup_removal` says, pT smeared with `jet_pt_resolution`;
- MET: minus the vector sum of every visible particle, pile-up included, each as the calorimeters
  measure it (`calorimeter_smearing`), the leptons as reconstructed.
Then the ADC2021 selection: thresholds, acceptances, at most 4 e, 4 mu, 10 jets, the single-lepton
trigger. Everything here is numpy on flat arrays: no Python loop over events or particles.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np

from .. import layout as L
from ..kinematics import jet_pt_resolution, pt_eta_phi, wrap_phi
from ...errors import ConfigError

INVISIBLE_PDG = (12, 14, 16)  # neutrinos
# Stable charged particles in Pythia's default final state (|PDG id|): e, mu, pi+-, K+-, p, and the charged
# hyperons in case a setting keeps them. Everything else visible (photons, K_L, neutrons) is neutral.
CHARGED_PDG = np.array([11, 13, 211, 321, 2212, 3112, 3222, 3312, 3334])


def is_charged(pdg: np.ndarray) -> np.ndarray:
    return np.isin(np.abs(pdg), CHARGED_PDG)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector-response parameters (recorded in the file provenance)."""

    calo_eta_max: float = 5.0
    lepton_iso_dr: float = 0.3
    # Relative isolation below which an electron / a muon is kept; None: no isolation.
    electron_iso_max: float | None = None
    muon_iso_max: float | None = None
    # MET from every visible particle as the calorimeters measure it (particle flow, Delphes' resolutions)
    # instead of the true momenta corrected for the reconstructed jets' smearing.
    calorimeter_smearing: bool = True
    # Relative isolation below which a lepton above the trigger threshold fires the trigger; None: any does.
    trigger_iso_max: float | None = 0.45
    # Identification efficiency rising linearly from 0 at the first pT to its plateau at the second (GeV);
    # None: 80 % of the plateau below 10 GeV.
    lepton_turn_on: tuple[float, float] | None = (5.0, 10.0)
    iso_particle_pt_min: float = 0.5
    jet_r: float = 0.4
    jet_cluster_pt_min: float = 5.0  # before smearing; the 15 GeV cut is applied after
    # Pile-up (pileup.py): mean number of overlaid minimum-bias interactions, 0 = none. MET keeps all of it.
    pileup_mean: float = 20.0
    pileup_pool: int = 1000  # minimum-bias events generated per chunk, drawn with replacement
    tracker_eta_max: float = 2.5
    # Which pile-up particles leave the jet and isolation inputs: "charged" (those within the tracker,
    # identified by their vertex; then jets and isolation lose rho times their area, rho the event's median
    # pT density, as Delphes' CMS pile-up card) or "all" (as PUPPI's per-particle weights do in the limit:
    # pile-up reaches MET only).
    jet_pileup_removal: str = "all"
    electron_pt_rel_res: float = 0.02
    muon_pt_rel_res_barrel: float = 0.01  # |eta| < 1.5
    muon_pt_rel_res_endcap: float = 0.02

    def __post_init__(self):
        if self.jet_pileup_removal not in ("charged", "all"):
            raise ConfigError(f"DetectorConfig.jet_pileup_removal must be 'charged' or 'all', got {self.jet_pileup_removal!r}")
        if self.lepton_turn_on is not None and not 0 <= self.lepton_turn_on[0] < self.lepton_turn_on[1]:
            raise ConfigError(f"DetectorConfig.lepton_turn_on must be (low, high) with 0 <= low < high, got {self.lepton_turn_on}")
        if self.pileup_mean < 0 or self.pileup_pool < 1:
            raise ConfigError(f"DetectorConfig: pileup_mean must be >= 0 and pileup_pool >= 1, got {self.pileup_mean}, "
                             f"{self.pileup_pool}")


# Which published fact each calibrated default follows (recorded in every file's provenance).
CALIBRATION = {
    "trigger_iso_max": "the predecessor sample's production is named IsoLep_lt_45_pt_gt_23 (an isolated "
                       "lepton, relative isolation < 0.45, pT > 23 GeV); with it QCD is a few per cent of the "
                       "background, as the published 62 % jet-less events require",
    "electron_iso_max / muon_iso_max": "off: isolating the stored leptons removed the third leptons the "
                                        "published LQ, h0 and h+- files hold (7, 4, 6 %)",
    "lepton_turn_on": "the published files store leptons down to 5-10 GeV; with a turn-on from 5 to 10 GeV "
                      "A->4l has 14 / 35 / 38 / 13 % of events with 1-4 leptons (published 16 / 35 / 32 / 18; "
                      "before: 5 / 20 / 40 / 33)",
    "pileup_mean": "PU20 in the h0 and h+- file names; with 20 interactions the background's MET mean / median "
                   "is 40 / 37 GeV (published 42 / 39) and A->4l's, which has no neutrinos, 27 / 25 (29 / 25)",
    "jet_pileup_removal": "all pile-up leaves the jets (PUPPI-like): with charged-hadron subtraction alone "
                          "pile-up jets halved the jet-less W events, while the published background has "
                          "fewer jets than W without pile-up",
    "calorimeter_smearing": "Delphes computes MET from its particle flow, every calorimeter deposit smeared",
}


@dataclass
class Particles:
    """Flat visible final-state particles of a batch of events: `evt` indexes the event."""

    evt: np.ndarray
    pdg: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    n_events: int
    pileup: np.ndarray | None = None  # True for overlaid pile-up particles; None: none

    def __post_init__(self):
        if self.pileup is None:
            self.pileup = np.zeros(len(self.evt), bool)

    @classmethod
    def concatenate(cls, parts: list["Particles"], same_events: bool = False) -> "Particles":
        """Batches one after another (events renumbered), or, with `same_events`, more particles for the
        same events (kept grouped by event, the first batch's particles first within each event)."""
        if same_events:
            evt = np.concatenate([p.evt for p in parts])
            n_events = parts[0].n_events
        else:
            offsets = np.cumsum([0] + [p.n_events for p in parts[:-1]])
            evt = np.concatenate([p.evt + o for p, o in zip(parts, offsets)])
            n_events = sum(p.n_events for p in parts)
        order = np.argsort(evt, kind="stable")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])[order]  # noqa: E731
        return cls(evt[order], cat("pdg"), cat("px"), cat("py"), cat("pz"), cat("e"), n_events, cat("pileup"))

    @classmethod
    def from_pythia(cls, batch: ak.Array) -> "Particles":
        """Visible final-state particles from a `Pythia.nextBatch` awkward array."""
        prt = batch["prt"]
        keep = (prt["status"] > 0)
        for pdg in INVISIBLE_PDG:
            keep = keep & (abs(prt["id"]) != pdg)
        prt = prt[keep]
        counts = ak.to_numpy(ak.num(prt))
        flat = lambda a: ak.to_numpy(ak.flatten(a)).astype(np.float64)  # noqa: E731
        p = prt["p"]
        return cls(
            evt=np.repeat(np.arange(len(counts)), counts),
            pdg=ak.to_numpy(ak.flatten(prt["id"])).astype(np.int32),
            px=flat(p["px"]), py=flat(p["py"]), pz=flat(p["pz"]), e=flat(p["e"]),
            n_events=len(counts),
        )

    def select_events(self, keep: np.ndarray) -> "Particles":
        """The events where `keep` (n_events,) is True, renumbered 0..keep.sum() - 1."""
        index = np.cumsum(keep) - 1
        inside = keep[self.evt]
        return Particles(index[self.evt[inside]], self.pdg[inside], self.px[inside], self.py[inside],
                         self.pz[inside], self.e[inside], int(keep.sum()), self.pileup[inside])

    def select(self, mask: np.ndarray) -> "Particles":
        return Particles(self.evt[mask], self.pdg[mask], self.px[mask], self.py[mask], self.pz[mask],
                         self.e[mask], self.n_events, self.pileup[mask])


def _lepton_efficiency(is_ele: np.ndarray, pt: np.ndarray, abseta: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Identification efficiency (Delphes-CMS-like tables), times the low-pT turn-on."""
    ele = np.where(abseta < 1.5, 0.95, np.where(abseta < 2.5, 0.85, 0.75))
    mu = np.where(abseta < 1.5, 0.95, 0.90)
    eff = np.where(is_ele, ele, mu)
    if cfg.lepton_turn_on is None:
        return np.where(pt < 10.0, 0.8 * eff, eff)
    lo, hi = cfg.lepton_turn_on
    return eff * np.clip((pt - lo) / (hi - lo), 0.0, 1.0)


def _calorimeter_scale(pdg: np.ndarray, e: np.ndarray, eta: np.ndarray, cfg: DetectorConfig,
                       rng: np.random.Generator) -> np.ndarray:
    """Measured over true energy per particle, with Delphes' CMS calorimeter resolutions (E in GeV):
    charged particles within the tracker are measured by it (1); photons and electrons in the ECAL,
    (1 + 0.64 eta^2) sqrt((0.008 E)^2 + 0.11^2 E + 0.4^2) in the barrel, (2.16 + 5.6 (|eta| - 2)^2) times
    that in the endcaps, sqrt((0.107 E)^2 + 2.08^2 E) forward; hadrons in the HCAL, sqrt((0.05 E)^2 +
    1.5^2 E) to |eta| = 3, sqrt((0.13 E)^2 + 2.7^2 E) forward."""
    a = np.abs(eta)
    em = np.isin(np.abs(pdg), (11, 22))
    stochastic = np.sqrt((0.008 * e) ** 2 + 0.11**2 * e + 0.4**2)
    ecal = np.where(a <= 1.5, (1 + 0.64 * eta**2) * stochastic,
                    np.where(a <= 2.5, (2.16 + 5.6 * (a - 2) ** 2) * stochastic, np.sqrt((0.107 * e) ** 2 + 2.08**2 * e)))
    hcal = np.where(a <= 3.0, np.sqrt((0.05 * e) ** 2 + 1.5**2 * e), np.sqrt((0.13 * e) ** 2 + 2.7**2 * e))
    sigma = np.where(em, ecal, hcal)
    tracked = is_charged(pdg) & (a < cfg.tracker_eta_max)
    measured = np.maximum(e + sigma * rng.standard_normal(len(e)), 0.0)
    return np.where(tracked, 1.0, measured / np.maximum(e, 1e-12))


def _pairs_within_event(evt_of: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items with event index `evt_of`, all (item, particle) pairs of the same event (sorted particles)."""
    n = counts[evt_of]
    item = np.repeat(np.arange(len(evt_of)), n)
    offset_in_pairs = np.repeat(np.cumsum(n) - n, n)
    part = np.arange(n.sum()) - offset_in_pairs + np.repeat(starts[evt_of], n)
    return item, part


def _relative_isolation(ci, evt, pt, eta, phi, counts, starts, cfg: DetectorConfig, rho: np.ndarray,
                        inputs: np.ndarray) -> np.ndarray:
    """Sum pT of the other `inputs` particles within dR < cfg.lepton_iso_dr, less rho times the cone's
    area (rho (n_events,): 0 without pile-up), over the pT of particle ci."""
    item, j = _pairs_within_event(evt[ci], counts, starts)
    dphi = wrap_phi(phi[j] - phi[ci[item]])
    near = ((np.hypot(eta[j] - eta[ci[item]], dphi) < cfg.lepton_iso_dr) & (j != ci[item])
            & (pt[j] > cfg.iso_particle_pt_min) & inputs[j])
    cone = np.bincount(item, weights=np.where(near, pt[j], 0.0), minlength=len(ci))
    return np.maximum(cone - rho[evt[ci]] * np.pi * cfg.lepton_iso_dr**2, 0.0) / pt[ci]


# rho, the median pT density, on a grid of cells (0.5 in eta x pi/6 in phi) in three eta ranges, as
# Delphes' FastJetGridMedianEstimator does: forward (-5, -2.5), central (-2.5, 2.5), forward (2.5, 5).
_RHO_ETA_EDGES = np.arange(-5.0, 5.01, 0.5)
_RHO_N_PHI = 12
_RHO_RANGES = (slice(0, 5), slice(5, 15), slice(15, 20))


def median_density(evt, pt, eta, phi, n_events: int) -> np.ndarray:
    """rho per event and eta range (forward, central, forward), (n_events, 3) in GeV per unit area."""
    n_eta = len(_RHO_ETA_EDGES) - 1
    ie = np.clip(np.digitize(eta, _RHO_ETA_EDGES) - 1, 0, n_eta - 1)
    ip = np.clip(((phi + np.pi) / (2 * np.pi) * _RHO_N_PHI).astype(int), 0, _RHO_N_PHI - 1)
    cells = np.bincount((evt * n_eta + ie) * _RHO_N_PHI + ip, weights=pt, minlength=n_events * n_eta * _RHO_N_PHI)
    cells = cells.reshape(n_events, n_eta, _RHO_N_PHI) / (0.5 * 2 * np.pi / _RHO_N_PHI)
    return np.stack([np.median(cells[:, r].reshape(n_events, -1), axis=1) for r in _RHO_RANGES], axis=1)


def _rho_range(eta: np.ndarray) -> np.ndarray:
    return np.where(eta < -2.5, 0, np.where(eta < 2.5, 1, 2))


def _fill(out: np.ndarray, obj: L.ObjectType, evt: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
    """Scatter objects into `out` (N, 19, 4): the leading `obj.n_slots` per event, pT-ordered."""
    if len(evt) == 0:
        return
    order = np.lexsort((-pt, evt))
    evt, pt, eta, phi = evt[order], pt[order], eta[order], phi[order]
    idx = np.arange(len(evt))
    first = np.r_[True, evt[1:] != evt[:-1]]
    rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
    keep = rank < obj.n_slots
    slot = obj.slots.start + rank[keep]
    e = evt[keep]
    out[e, slot, L.PT] = pt[keep]
    out[e, slot, L.ETA] = eta[keep]
    out[e, slot, L.PHI] = phi[keep]
    out[e, slot, L.CLASS] = obj.class_id


# A lepton's measured pT is within a few per cent of its true pT (resolution 1-2 %): an event without a
# generator e or mu above this fraction of the trigger threshold can never fire the trigger.
_TRIGGER_PREFILTER = 0.75


def may_trigger(parts: Particles) -> np.ndarray:
    """(n_events,) bool: the event has an electron or muon in acceptance with pT above 75 % of the
    trigger threshold (16 standard deviations of the electron resolution below it). Events without one
    fail `reconstruct`'s trigger whatever the random draws, so the generator skips their pile-up and
    reconstruction."""
    pt, eta, _ = pt_eta_phi(parts.px, parts.py, parts.pz)
    apdg = np.abs(parts.pdg)
    cand = (((apdg == 11) & (np.abs(eta) < L.ELECTRON.eta_max)) | ((apdg == 13) & (np.abs(eta) < L.MUON.eta_max)))
    cand &= (pt > _TRIGGER_PREFILTER * L.TRIGGER_PT) & ~parts.pileup
    return np.bincount(parts.evt[cand], minlength=parts.n_events) > 0


@dataclass
class _Visible:
    """The visible particles within the calorimeters' acceptance, with their kinematics and per-event
    offsets: what every stage of `reconstruct` reads."""

    parts: Particles
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    counts: np.ndarray  # (n_events,) particles per event
    starts: np.ndarray  # (n_events,) index of each event's first particle

    @classmethod
    def within(cls, parts: Particles, cfg: DetectorConfig) -> "_Visible":
        _, eta, _ = pt_eta_phi(parts.px, parts.py, parts.pz)
        parts = parts.select(np.abs(eta) < cfg.calo_eta_max)
        counts = np.bincount(parts.evt, minlength=parts.n_events)
        return cls(parts, *pt_eta_phi(parts.px, parts.py, parts.pz), counts, np.cumsum(counts) - counts)

    def isolation(self, ci: np.ndarray, cfg: DetectorConfig, rho: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """`_relative_isolation` of the particles `ci` among `inputs`, with the central rho."""
        return _relative_isolation(ci, self.parts.evt, self.pt, self.eta, self.phi, self.counts, self.starts, cfg,
                                   rho[:, 1], inputs)


def _pileup_removal(v: _Visible, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(the pile-up particles that leave the jet and isolation inputs, rho (n_events, 3)): charged pile-up
    in the tracker identified by its vertex (CHS, then rho from what remains, per event and eta range), or
    all of it (rho 0)."""
    parts = v.parts
    if cfg.jet_pileup_removal == "all":
        removed = parts.pileup
    else:
        removed = parts.pileup & is_charged(parts.pdg) & (np.abs(v.eta) < cfg.tracker_eta_max)
    rho = np.zeros((parts.n_events, len(_RHO_RANGES)))
    if cfg.pileup_mean > 0 and cfg.jet_pileup_removal == "charged":
        keep = ~removed
        rho = median_density(parts.evt[keep], v.pt[keep], v.eta[keep], v.phi[keep], parts.n_events)
    return removed, rho


def _leptons(v: _Visible, cfg: DetectorConfig, rho: np.ndarray, inputs: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(particle index, measured pT) of the reconstructed electrons and muons: acceptance, efficiency,
    isolation against `inputs`, resolution, threshold."""
    apdg = np.abs(v.parts.pdg)
    is_e, is_mu = apdg == 11, apdg == 13
    cand = (((is_e & (np.abs(v.eta) < L.ELECTRON.eta_max)) | (is_mu & (np.abs(v.eta) < L.MUON.eta_max)))
            & (v.pt > 0.9 * L.ELECTRON.pt_min))
    ci = np.flatnonzero(cand & ~v.parts.pileup)
    ci = ci[rng.random(len(ci)) < _lepton_efficiency(is_e[ci], v.pt[ci], np.abs(v.eta[ci]), cfg)]
    if cfg.electron_iso_max is not None or cfg.muon_iso_max is not None:
        limit = np.where(is_e[ci], np.inf if cfg.electron_iso_max is None else cfg.electron_iso_max,
                         np.inf if cfg.muon_iso_max is None else cfg.muon_iso_max)
        ci = ci[v.isolation(ci, cfg, rho, inputs) < limit]
    res = np.where(is_e[ci], cfg.electron_pt_rel_res,
                   np.where(np.abs(v.eta[ci]) < 1.5, cfg.muon_pt_rel_res_barrel, cfg.muon_pt_rel_res_endcap))
    lpt = v.pt[ci] * np.maximum(1.0 + res * rng.standard_normal(len(ci)), 0.0)
    ok = lpt > L.ELECTRON.pt_min  # electron and muon thresholds are equal (3 GeV)
    return ci[ok], lpt[ok]


def _trigger(v: _Visible, cfg: DetectorConfig, ci: np.ndarray, lpt: np.ndarray, rho: np.ndarray,
             inputs: np.ndarray) -> np.ndarray:
    """(n_events,) bool: a lepton above the trigger threshold, isolated against `inputs` with
    `trigger_iso_max` (every lepton is stored all the same)."""
    trig = lpt > L.TRIGGER_PT
    if cfg.trigger_iso_max is not None:
        t = np.flatnonzero(trig)
        trig[t] = v.isolation(ci[t], cfg, rho, inputs) < cfg.trigger_iso_max
    return np.bincount(v.parts.evt[ci], weights=trig, minlength=v.parts.n_events) > 0


def _met(v: _Visible, cfg: DetectorConfig, sel: np.ndarray, event: np.ndarray, ci: np.ndarray, lpt: np.ndarray,
         n_pass: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(MET x, MET y) (n_pass,) from the visible particles `sel` of the triggered events (`event`: their
    new index, per particle): as the calorimeters measure them (particle flow), or their true momenta
    (`_jets` then corrects for the smearing of the reconstructed jets); the leptons `ci` as reconstructed."""
    parts = v.parts
    if cfg.calorimeter_smearing:
        w = _calorimeter_scale(parts.pdg[sel], parts.e[sel], v.eta[sel], cfg, rng)
        lepton_term = lpt
    else:
        w, lepton_term = 1.0, lpt - v.pt[ci]
    met_x = -np.bincount(event[sel], weights=parts.px[sel] * w, minlength=n_pass)
    met_y = -np.bincount(event[sel], weights=parts.py[sel] * w, minlength=n_pass)
    met_x -= np.bincount(event[ci], weights=lepton_term * np.cos(v.phi[ci]), minlength=n_pass)
    met_y -= np.bincount(event[ci], weights=lepton_term * np.sin(v.phi[ci]), minlength=n_pass)
    return met_x, met_y


def _jets(v: _Visible, cfg: DetectorConfig, jin: np.ndarray, event: np.ndarray, n_pass: int, rho: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(event, true pT after the rho subtraction, smeared pT, eta, phi) of the anti-kT jets of the
    particles `jin` (`event`: the triggered events' new index per particle; `rho` of those events)."""
    parts = v.parts
    jcounts = np.bincount(event[jin], minlength=n_pass)
    arr = ak.unflatten(ak.zip({"px": parts.px[jin], "py": parts.py[jin], "pz": parts.pz[jin], "E": parts.e[jin]}), jcounts)
    jets = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, cfg.jet_r)).inclusive_jets(
        min_pt=cfg.jet_cluster_pt_min)
    j_ev = np.repeat(np.arange(n_pass), ak.to_numpy(ak.num(jets)))
    jflat = ak.flatten(jets)
    jpt, jeta, jphi = pt_eta_phi(*(ak.to_numpy(jflat[c]).astype(np.float64) for c in ("px", "py", "pz")))
    if rho.any():  # rho * area subtraction (area pi R^2: the anti-kT area of a hard jet)
        jrho = rho[j_ev, _rho_range(jeta)]
        jpt = jpt * np.maximum(1.0 - jrho * np.pi * cfg.jet_r**2 / np.maximum(jpt, 1e-9), 0.0)
    jpt_s = np.maximum(jpt + jet_pt_resolution(jpt) * rng.standard_normal(len(jpt)), 0.0)
    return j_ev, jpt, jpt_s, jeta, jphi


def reconstruct(parts: Particles, rng: np.random.Generator, cfg: DetectorConfig = DetectorConfig()
                ) -> tuple[np.ndarray, np.ndarray]:
    """Detector response + ADC2021 selection, in stages: acceptance, pile-up removal, leptons, trigger,
    MET, jets, the layout. Returns (events (n_pass, 19, 4) float32, passed (n_events,) bool)."""
    v = _Visible.within(parts, cfg)
    pu_removed, rho = _pileup_removal(v, cfg)
    ci, lpt = _leptons(v, cfg, rho, ~pu_removed, rng)
    passed = _trigger(v, cfg, ci, lpt, rho, ~pu_removed)
    if not passed.any():
        return np.zeros((0, L.N_SLOTS, L.N_FEATURES), np.float32), passed

    # only the triggered events from here on, with a new dense event index
    evt = v.parts.evt
    event, n_pass = np.cumsum(passed)[evt] - 1, int(passed.sum())
    in_pass = passed[evt]
    is_lepton = np.zeros(len(v.pt), bool)
    is_lepton[ci] = True
    keep = passed[evt[ci]]
    ci, lpt = ci[keep], lpt[keep]
    lept_e = np.abs(v.parts.pdg[ci]) == 11
    met_x, met_y = _met(v, cfg, in_pass & ~is_lepton if cfg.calorimeter_smearing else in_pass, event, ci, lpt, n_pass, rng)
    j_ev, jpt, jpt_s, jeta, jphi = _jets(v, cfg, in_pass & ~is_lepton & ~pu_removed, event, n_pass, rho[passed], rng)
    if not cfg.calorimeter_smearing:
        met_x -= np.bincount(j_ev, weights=(jpt_s - jpt) * np.cos(jphi), minlength=n_pass)
        met_y -= np.bincount(j_ev, weights=(jpt_s - jpt) * np.sin(jphi), minlength=n_pass)
    jsel = (jpt_s > L.JET.pt_min) & (np.abs(jeta) < L.JET.eta_max)

    out = np.zeros((n_pass, L.N_SLOTS, L.N_FEATURES), np.float64)
    out[:, 0, L.PT] = np.hypot(met_x, met_y)
    out[:, 0, L.PHI] = np.arctan2(met_y, met_x)
    out[:, 0, L.CLASS] = L.MET_ID
    l_ev = event[ci]
    _fill(out, L.ELECTRON, l_ev[lept_e], lpt[lept_e], v.eta[ci][lept_e], v.phi[ci][lept_e])
    _fill(out, L.MUON, l_ev[~lept_e], lpt[~lept_e], v.eta[ci][~lept_e], v.phi[ci][~lept_e])
    _fill(out, L.JET, j_ev[jsel], jpt_s[jsel], jeta[jsel], jphi[jsel])
    return out.astype(np.float32), passed
