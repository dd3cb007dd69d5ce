"""Fixtures of the language model's tests."""

import pytest


@pytest.fixture(params=["this-cpu", "no-bf16"])
def cpu_view(request, monkeypatch) -> str:
    """Runs a test as this CPU is, then as a CPU without native bf16 (an AVX2-only one) would see it, with
    genseq's own switch GENSEQ_NO_BF16=1: a bf16 machine catches what an AVX2 machine would hit."""
    from genseq.lm.runtime import NO_BF16_VARIABLE, cpu_supports_bf16

    if request.param == "no-bf16":
        if not cpu_supports_bf16():
            pytest.skip("this CPU has no native bf16: the run as this CPU is already the run without it")
        monkeypatch.setenv(NO_BF16_VARIABLE, "1")
    else:
        monkeypatch.delenv(NO_BF16_VARIABLE, raising=False)
    return request.param
