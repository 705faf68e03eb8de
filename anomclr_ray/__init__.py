"""anomclr-ray: Ray-distributed hyperparameter studies for AnomalyCLR on LHC collision events."""

__version__ = "0.1.0"
