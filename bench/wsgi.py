"""WSGI entry of the real-server bench: ``BENCH_APP`` names one app of bench/apps.py,
``BENCH_TAG`` what it writes under (bench/serve.py created its tables already)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from apps import make_app  # noqa: E402

app = make_app(os.environ["BENCH_APP"], os.environ["BENCH_TAG"], create=False)
