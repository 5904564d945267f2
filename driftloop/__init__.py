"""driftloop: a declarative, config-driven MLOps pipeline engine.

Importing the package turns off the telemetry and update checks of the
libraries it drives, so the whole loop runs with no network at all.
"""

import os

_OFFLINE = {
    "NML_DISABLE_USAGE_LOGGING": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PYARROW_IGNORE_TIMEZONE": "1",
}
for _key, _value in _OFFLINE.items():
    os.environ.setdefault(_key, _value)
