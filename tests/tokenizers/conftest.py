"""Fixtures of the tokenizers' tests: real chorales, rendered once for the whole session."""

import pytest

from tests.helpers import chorale_bytes


@pytest.fixture(scope="session")
def chorales() -> list[bytes]:
    """Three Bach chorales from music21's corpus rendered to MIDI, as the bach-chorales corpus renders them."""
    return chorale_bytes(("bwv66.6", "bwv7.7", "bwv26.6"))
