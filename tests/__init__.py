"""genseq's tests, laid out as the package is (tests/lm/ tests genseq/lm/, ...); shared helpers in tests/helpers.py."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")  # read when torch is first imported: set before any test imports it
