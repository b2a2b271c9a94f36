"""Gate tests reuse the app's fixture runs (real run files from the harness)."""

from ..app.conftest import app_results  # noqa: F401
