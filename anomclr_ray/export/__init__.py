"""What a study finds, taken out of it: a trial's scorer (encoder, preprocessing, AE ensemble) as files,
the validity domain of the events it was trained on, a model card, the registered MLflow model, and
applying it to any event file (docs/models.md)."""

from .domain import BOUNDARIES, Domain
from .scorer import SCORER_DIR, Scorer

__all__ = ["BOUNDARIES", "Domain", "SCORER_DIR", "Scorer"]
