"""Events: the ADC2021 layout, HDF5 IO, validation, preprocessing and Pythia 8 generation."""

from . import layout
from .io import EventFile, find_sample_file, load_events, write_events
from .preprocess import Preprocessor
from .validate import EventValidationError, check_events, validate_file

__all__ = ["layout", "EventFile", "find_sample_file", "load_events", "write_events", "Preprocessor",
           "EventValidationError", "check_events", "validate_file"]
