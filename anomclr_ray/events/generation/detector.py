"""A parametric CMS-like detector response and the ADC2021 selection, vectorised over many events.

Input: the final-state particles of a batch of Pythia events as flat arrays plus per-event counts.
Output: the batch's events in the ADC2021 layout (n_pass, 19, 4) and which events passed.

Reconstruction, in the spirit of Delphes' CMS card:
- electrons / muons: generator leptons inside the tracker acceptance, an efficiency that depends on
  pT and eta, a relative pT resolution, and a relative isolation (sum pT of visible particles within
  dR < 0.3 over the lepton pT) below `lepton_iso_max`; they are removed from the jet inputs, as
  Delphes' unique-object finder does;
- jets: anti-kT R = 0.4 (FastJet) on all other visible particles with |eta| < 5, pT smeared with
  `jet_pt_resolution`;
- MET: minus the vector sum of all visible particles with |eta| < 5, corrected for the smearing of
  the reconstructed leptons and jets.
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
    # None: no isolation, as for L1-trigger leptons. The published files keep leptons from b decays
    # (QCD is a third of the triggered background), which a tight isolation would remove.
    lepton_iso_max: float | None = None
    iso_particle_pt_min: float = 0.5
    jet_r: float = 0.4
    jet_cluster_pt_min: float = 5.0  # before smearing; the 15 GeV cut is applied after
    # Pile-up (pileup.py): mean number of overlaid minimum-bias interactions, 0 = none. With pile-up, as
    # Delphes' CMS pile-up card: charged pile-up particles within the tracker leave the jet inputs, jets
    # lose rho * area (rho: the event's median pT density), isolation loses rho * cone area, MET keeps all.
    pileup_mean: float = 0.0
    pileup_pool: int = 1000  # minimum-bias events generated per chunk, drawn with replacement
    tracker_eta_max: float = 2.5
    electron_pt_rel_res: float = 0.02
    muon_pt_rel_res_barrel: float = 0.01  # |eta| < 1.5
    muon_pt_rel_res_endcap: float = 0.02


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

    def select(self, mask: np.ndarray) -> "Particles":
        return Particles(self.evt[mask], self.pdg[mask], self.px[mask], self.py[mask], self.pz[mask],
                         self.e[mask], self.n_events, self.pileup[mask])


def _lepton_efficiency(is_ele: np.ndarray, pt: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    """Identification efficiency (Delphes-CMS-like tables)."""
    low = pt < 10.0
    ele = np.where(abseta < 1.5, 0.95, np.where(abseta < 2.5, 0.85, 0.75))
    mu = np.where(abseta < 1.5, 0.95, 0.90)
    eff = np.where(is_ele, ele, mu)
    return np.where(low, 0.8 * eff, eff)


def _pairs_within_event(evt_of: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items with event index `evt_of`, all (item, particle) pairs of the same event (sorted particles)."""
    n = counts[evt_of]
    item = np.repeat(np.arange(len(evt_of)), n)
    offset_in_pairs = np.repeat(np.cumsum(n) - n, n)
    part = np.arange(n.sum()) - offset_in_pairs + np.repeat(starts[evt_of], n)
    return item, part


def _relative_isolation(ci, evt, pt, eta, phi, counts, starts, cfg: DetectorConfig, rho: np.ndarray) -> np.ndarray:
    """Sum pT of other visible particles within dR < cfg.lepton_iso_dr, less rho times the cone's area
    (rho (n_events,): 0 without pile-up), over the pT of particle ci."""
    item, j = _pairs_within_event(evt[ci], counts, starts)
    dphi = wrap_phi(phi[j] - phi[ci[item]])
    near = (np.hypot(eta[j] - eta[ci[item]], dphi) < cfg.lepton_iso_dr) & (j != ci[item]) & (pt[j] > cfg.iso_particle_pt_min)
    cone = np.bincount(item, weights=np.where(near, pt[j], 0.0), minlength=len(ci))
    return np.maximum(cone - rho[evt[ci]] * np.pi * cfg.lepton_iso_dr**2, 0.0) / pt[ci]


# rho, the median pT density, on a grid of cells (0.5 in eta x pi/6 in phi) in three eta ranges, as
# Delphes' FastJetGridMedianEstimator does: forward (-5, -2.5), central (-2.5, 2.5), forward (2.5, 5).
_RHO_ETA_EDGES = np.arange(-5.0, 5.01, 0.5)
_RHO_N_PHI = 12
_RHO_RANGES = (slice(0, 5), slice(5, 15), slice(15, 20))


def median_density(evt, pt, eta, phi, n_events: int) -> np.ndarray:
    """rho per event and eta range, (n_events, 3) GeV per unit area, and the range index of any eta."""
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


def reconstruct(parts: Particles, rng: np.random.Generator, cfg: DetectorConfig = DetectorConfig()
                ) -> tuple[np.ndarray, np.ndarray]:
    """Detector response + ADC2021 selection. Returns (events (n_pass, 19, 4) float32, passed (n_events,) bool)."""
    pt, eta, phi = pt_eta_phi(parts.px, parts.py, parts.pz)
    parts = parts.select(np.abs(eta) < cfg.calo_eta_max)
    pt, eta, phi = pt_eta_phi(parts.px, parts.py, parts.pz)
    n_ev = parts.n_events
    counts = np.bincount(parts.evt, minlength=n_ev)
    starts = np.cumsum(counts) - counts

    # ---- pile-up: charged pile-up particles in the tracker are identified by their vertex (CHS) and
    # leave the jet inputs; rho from what remains, per event and eta range
    chs_removed = parts.pileup & is_charged(parts.pdg) & (np.abs(eta) < cfg.tracker_eta_max)
    if cfg.pileup_mean > 0:
        keep = ~chs_removed
        rho = median_density(parts.evt[keep], pt[keep], eta[keep], phi[keep], n_ev)
    else:
        rho = np.zeros((n_ev, len(_RHO_RANGES)))

    # ---- leptons: acceptance, efficiency, isolation, resolution
    apdg = np.abs(parts.pdg)
    is_e, is_mu = apdg == 11, apdg == 13
    cand = ((is_e & (np.abs(eta) < L.ELECTRON.eta_max)) | (is_mu & (np.abs(eta) < L.MUON.eta_max))) & (pt > 0.9 * L.ELECTRON.pt_min)
    ci = np.flatnonzero(cand & ~parts.pileup)
    ci = ci[rng.random(len(ci)) < _lepton_efficiency(is_e[ci], pt[ci], np.abs(eta[ci]))]
    if cfg.lepton_iso_max is not None:
        ci = ci[_relative_isolation(ci, parts.evt, pt, eta, phi, counts, starts, cfg, rho[:, 1]) < cfg.lepton_iso_max]
    res = np.where(is_e[ci], cfg.electron_pt_rel_res,
                   np.where(np.abs(eta[ci]) < 1.5, cfg.muon_pt_rel_res_barrel, cfg.muon_pt_rel_res_endcap))
    lpt = pt[ci] * np.maximum(1.0 + res * rng.standard_normal(len(ci)), 0.0)
    l_ok = lpt > L.ELECTRON.pt_min  # electron and muon thresholds are equal (3 GeV)
    ci, lpt = ci[l_ok], lpt[l_ok]
    lept_e = is_e[ci]
    trig_pt = np.where(lpt > L.TRIGGER_PT, 1, 0)
    passed = np.bincount(parts.evt[ci], weights=trig_pt, minlength=n_ev) > 0
    if not passed.any():
        return np.zeros((0, L.N_SLOTS, L.N_FEATURES), np.float32), passed

    # ---- keep only triggered events from here on; new dense event index
    new_index = np.cumsum(passed) - 1
    n_pass = int(passed.sum())
    is_lepton = np.zeros(len(pt), bool)
    is_lepton[ci] = True
    in_pass = passed[parts.evt]

    # ---- MET from all visible particles (truth), corrected below for object smearing
    ev_all = new_index[parts.evt[in_pass]]
    met_x = -np.bincount(ev_all, weights=parts.px[in_pass], minlength=n_pass)
    met_y = -np.bincount(ev_all, weights=parts.py[in_pass], minlength=n_pass)
    lkeep = passed[parts.evt[ci]]
    ci, lpt, lept_e = ci[lkeep], lpt[lkeep], lept_e[lkeep]
    l_ev = new_index[parts.evt[ci]]
    met_x -= np.bincount(l_ev, weights=(lpt - pt[ci]) * np.cos(phi[ci]), minlength=n_pass)
    met_y -= np.bincount(l_ev, weights=(lpt - pt[ci]) * np.sin(phi[ci]), minlength=n_pass)

    # ---- jets from the remaining visible particles
    jin = in_pass & ~is_lepton & ~chs_removed
    jcounts = np.bincount(new_index[parts.evt[jin]], minlength=n_pass)
    arr = ak.unflatten(ak.zip({"px": parts.px[jin], "py": parts.py[jin], "pz": parts.pz[jin], "E": parts.e[jin]}), jcounts)
    jets = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, cfg.jet_r)).inclusive_jets(
        min_pt=cfg.jet_cluster_pt_min)
    j_ev = np.repeat(np.arange(n_pass), ak.to_numpy(ak.num(jets)))
    jflat = ak.flatten(jets)
    jpt, jeta, jphi = pt_eta_phi(*(ak.to_numpy(jflat[c]).astype(np.float64) for c in ("px", "py", "pz")))
    if cfg.pileup_mean > 0:  # rho * area subtraction (area pi R^2: the anti-kT area of a hard jet)
        jrho = rho[passed][j_ev, _rho_range(jeta)]
        scale = np.maximum(1.0 - jrho * np.pi * cfg.jet_r**2 / np.maximum(jpt, 1e-9), 0.0)
        jpt = jpt * scale
    jpt_s = np.maximum(jpt + jet_pt_resolution(jpt) * rng.standard_normal(len(jpt)), 0.0)
    met_x -= np.bincount(j_ev, weights=(jpt_s - jpt) * np.cos(jphi), minlength=n_pass)
    met_y -= np.bincount(j_ev, weights=(jpt_s - jpt) * np.sin(jphi), minlength=n_pass)
    jsel = (jpt_s > L.JET.pt_min) & (np.abs(jeta) < L.JET.eta_max)

    out = np.zeros((n_pass, L.N_SLOTS, L.N_FEATURES), np.float64)
    out[:, 0, L.PT] = np.hypot(met_x, met_y)
    out[:, 0, L.PHI] = np.arctan2(met_y, met_x)
    out[:, 0, L.CLASS] = L.MET_ID
    _fill(out, L.ELECTRON, l_ev[lept_e], lpt[lept_e], eta[ci][lept_e], phi[ci][lept_e])
    _fill(out, L.MUON, l_ev[~lept_e], lpt[~lept_e], eta[ci][~lept_e], phi[ci][~lept_e])
    _fill(out, L.JET, j_ev[jsel], jpt_s[jsel], jeta[jsel], jphi[jsel])
    return out.astype(np.float32), passed
