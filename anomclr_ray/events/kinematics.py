"""Small vectorised kinematics shared by generation, validation tests and augmentations."""

from __future__ import annotations

import numpy as np


def wrap_phi(phi):
    """Map angles to [-pi, pi); works on numpy arrays and torch tensors."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def jet_pt_resolution(pt):
    """CMS-like jet pT resolution sigma(pT) = sqrt(0.052 pT^2 + 1.502 pT) [GeV], pT in GeV.

    The same function drives the generator's detector response and the jet-smearing augmentation.
    """
    return (0.052 * pt * pt + 1.502 * pt) ** 0.5


def pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pT, eta, phi) from Cartesian momenta; eta is +-inf free (capped at |eta| = 20)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.full_like(pz, 1e9), where=pt > 0))
    return pt, np.clip(eta, -20, 20), np.arctan2(py, px)


def transverse_mass(pt1, phi1, pt2, phi2):
    """m_T = sqrt(2 pT1 pT2 (1 - cos dphi)), e.g. lepton + MET for W -> l nu."""
    return np.sqrt(np.maximum(2 * pt1 * pt2 * (1 - np.cos(phi1 - phi2)), 0.0))


def invariant_mass(pt1, eta1, phi1, pt2, eta2, phi2):
    """Invariant mass of two massless objects given (pT, eta, phi)."""
    m2 = 2 * pt1 * pt2 * (np.cosh(eta1 - eta2) - np.cos(phi1 - phi2))
    return np.sqrt(np.maximum(m2, 0.0))
