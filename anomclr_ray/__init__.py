"""anomclr-ray: Ray-distributed hyperparameter studies for AnomalyCLR on LHC collision events."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# Ray reads RAY_AUTH_MODE when it is imported. Clusters started with `ray start` / `ray up` use token
# authentication (Ray 2.60), and a driver sends its token only in token mode, so we default to it
# before Ray can be imported through this package (a cluster without tokens cancels such a driver's
# actors: raycluster.connect detects that and names the setting). If Ray
# was imported first, its mode is fixed already: changing the environment now would only give its
# child processes another mode (raycluster.connect brings the two in line).
if "ray" not in _sys.modules:
    _os.environ.setdefault("RAY_AUTH_MODE", "token")

# What a user's input causes (configs, files, unreachable services, clusters), not a bug: the command line
# tools print it as one line, without a traceback, and exit with status 2 (errors.py has the types).
from .errors import USER_ERRORS  # noqa: E402
