"""Shared test setup: make helper modules in tests/ (e.g. ``synthetic``) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
