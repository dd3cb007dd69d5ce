"""Where tests run: the `cuda` mark, and a device parameter that adds CUDA where a GPU is visible."""

import pytest
import torch

NO_GPU = "no CUDA GPU visible (the cuda tests run on a GPU machine: pytest -m cuda, or python -m benchmarks.gpu)"
CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)]
"""Marks of a test that needs a CUDA GPU: selected by `-m cuda`, skipped without one."""

DEVICES = ["cpu", pytest.param("cuda", marks=CUDA, id="cuda")]
"""For @pytest.mark.parametrize("device", DEVICES): the same test on the CPU and, where there is one, the GPU."""


def needs_cuda(test):
    """@needs_cuda: the CUDA marks on one test."""
    for mark in CUDA:
        test = mark(test)
    return test
