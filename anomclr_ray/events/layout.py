"""The CMS ADC2021 event layout: the one declaration every other module uses.

An event is a (19, 4) float array: slot 0 holds MET, slots 1-4 electrons, 5-8 muons, 9-18 jets;
each slot holds (pT [GeV], eta, phi, class id). Empty slots are all zeros. Objects of one type are
pT-ordered (descending). MET has eta = 0. Class ids: MET 1, electron 2, muon 3, jet 4, empty 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

# ---- slots -----------------------------------------------------------------------------------
N_SLOTS = 19
N_FEATURES = 4

MET = slice(0, 1)
ELECTRONS = slice(1, 5)
MUONS = slice(5, 9)
JETS = slice(9, 19)
LEPTONS = slice(1, 9)
OBJECTS = slice(1, 19)  # everything but MET

# ---- features --------------------------------------------------------------------------------
PT, ETA, PHI, CLASS = 0, 1, 2, 3

# ---- class ids -------------------------------------------------------------------------------
EMPTY_ID, MET_ID, ELECTRON_ID, MUON_ID, JET_ID = 0, 1, 2, 3, 4
N_TYPES = 4  # one-hot over (MET, electron, muon, jet)


@dataclass(frozen=True)
class ObjectType:
    """One kind of physics object: its slots, class id and selection (pT in GeV)."""

    name: str
    slots: slice
    class_id: int
    pt_min: float
    eta_max: float

    @property
    def n_slots(self) -> int:
        return self.slots.stop - self.slots.start


# Selection as in the ADC2021 data set (docs/data.md). MET has no pT threshold and eta = 0.
MET_TYPE = ObjectType("met", MET, MET_ID, pt_min=0.0, eta_max=0.0)
ELECTRON = ObjectType("electron", ELECTRONS, ELECTRON_ID, pt_min=3.0, eta_max=3.0)
MUON = ObjectType("muon", MUONS, MUON_ID, pt_min=3.0, eta_max=2.1)
JET = ObjectType("jet", JETS, JET_ID, pt_min=15.0, eta_max=4.0)
OBJECT_TYPES = (MET_TYPE, ELECTRON, MUON, JET)

# Single-lepton trigger: at least one electron or muon above this pT within its acceptance.
TRIGGER_PT = 23.0

# Per-slot expected class id, shape (19,): the layout as an array for vectorised checks.
SLOT_CLASS = np.zeros(N_SLOTS, dtype=np.int64)
for _t in OBJECT_TYPES:
    SLOT_CLASS[_t.slots] = _t.class_id
SLOT_PT_MIN = np.zeros(N_SLOTS)
SLOT_ETA_MAX = np.zeros(N_SLOTS)
for _t in OBJECT_TYPES:
    SLOT_PT_MIN[_t.slots] = _t.pt_min
    SLOT_ETA_MAX[_t.slots] = _t.eta_max

# ---- files -----------------------------------------------------------------------------------
PARTICLES_KEY = "Particles"
CLASSES_KEY = "Particles_Classes"
NAMES_KEY = "Particles_Names"
LABELS_KEY = "process_label"  # ours: per-event process label in background files
PARTICLE_CLASSES = ("MET_class_1", "Four_Ele_class_2", "Four_Mu_class_3", "Ten_Jet_class_4")
PARTICLE_NAMES = ("Pt", "Eta", "Phi", "Class")

BACKGROUND = "background"
SIGNALS = ("ato4l", "leptoquark", "h_tautau", "hc_taunu")
SAMPLES = (BACKGROUND, *SIGNALS)

FILE_NAMES = {
    BACKGROUND: "background_for_training.h5",
    "ato4l": "Ato4l_lepFilter_13TeV.h5",
    "leptoquark": "leptoquark_LOWMASS_lepFilter_13TeV.h5",
    "h_tautau": "hToTauTau_13TeV_PU20.h5",
    "hc_taunu": "hChToTauNu_13TeV_PU20.h5",
}
SIGNAL_LATEX = {
    "ato4l": r"$A\to 4\ell$",
    "leptoquark": r"LQ$\to b\tau$",
    "h_tautau": r"$h^0\to\tau\tau$",
    "hc_taunu": r"$h^\pm\to\tau\nu$",
}

# Background process labels, in the ADC2021 authors' order.
PROCESS_LABELS = {"w": 0, "qcd": 1, "z": 2, "ttbar": 3}
SIGNAL_TEXT = {"ato4l": "A→4ℓ", "leptoquark": "LQ→bτ", "h_tautau": "h⁰→ττ", "hc_taunu": "h±→τν"}  # Markdown, CSV

PROCESS_LATEX = {"w": r"$W\to\ell\nu$", "qcd": "QCD", "z": r"$Z\to\ell\ell$", "ttbar": r"$t\bar t$"}


def check_sample(name: str) -> str:
    """Return `name` if it is a known sample, else raise naming the accepted ones."""
    if name not in SAMPLES:
        raise ConfigError(f"unknown sample {name!r}: expected one of {', '.join(SAMPLES)}")
    return name


def candidate_file_names(sample: str) -> tuple[str, ...]:
    """Published file names for `sample`, with the `_filtered` variant some releases use."""
    base = FILE_NAMES[check_sample(sample)]
    stem = base[: -len(".h5")]
    return (base, f"{stem}_filtered.h5")
