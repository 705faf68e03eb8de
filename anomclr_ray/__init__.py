"""anomclr-ray: Ray-distributed hyperparameter studies for AnomalyCLR on LHC collision events."""

__version__ = "0.1.0"

import os as _os

# Ray reads RAY_AUTH_MODE when it is imported. Clusters started with `ray start` / `ray up` use token
# authentication (Ray 2.60), and a driver sends its token only in token mode, so we default to it
# before Ray can be imported through this package. It also connects to clusters without auth.
_os.environ.setdefault("RAY_AUTH_MODE", "token")
