"""Augmented training sources: transposed and stretched copies of MIDI pieces, and their specification."""

import pickle

import pytest

from genseq.corpora.augment import augment_documents
from genseq.corpora.sources import Document
from genseq.errors import ConfigError
from genseq.lm.data import build_token_cache
from genseq.tokenizers import MidiTokenizer
from tests.helpers import band_with_tempo_changes


def test_augmented_copies_are_picklable_sources_with_their_own_fingerprints(tmp_path):
    path = tmp_path / "band.mid"
    path.write_bytes(band_with_tempo_changes())
    copies = augment_documents([Document(str(path), path=str(path), binary=True)], "transpose=-2..1,stretch=0.9..1.1")
    assert [c.semitones for c in copies] == [-2, -1, 0, 1]
    assert all(0.9 <= c.factor <= 1.1 for c in copies)
    assert len({c.fingerprint() for c in copies}) == 4
    assert pickle.loads(pickle.dumps(copies)) == copies
    cache = build_token_cache(copies, MidiTokenizer(), tmp_path / "tokens.bin")
    assert cache.documents == 4 and not cache.skipped


def test_the_same_corpus_always_gets_the_same_stretch_factors(tmp_path):
    documents = [Document(f"piece{i}.mid", path=f"piece{i}.mid", binary=True) for i in range(3)]
    first = augment_documents(documents, "stretch=0.8..1.2")
    assert first == augment_documents(documents, "stretch=0.8..1.2")
    assert len({c.factor for c in first}) == 3


@pytest.mark.parametrize("spec", ["", "transpose=3", "transpose=2..-2", "transpose=0.5..1", "pitch=1..2",
                                  "stretch=0..2", "transpose=-1..1,transpose=0..1"])
def test_malformed_augment_specs_are_config_errors(spec):
    with pytest.raises(ConfigError, match="--augment"):
        augment_documents([], spec)
