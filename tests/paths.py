"""Where the tests find the real development data: ``../shared/data`` beside the checkout, or the
folder ``AEVIZ_SHARED_DATA`` names (a missing one runs the suite as a fresh clone elsewhere does:
the tests on real data skip, each with its reason)."""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("AEVIZ_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
