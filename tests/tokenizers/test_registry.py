"""What holds for every tokenizer in the registry (`genseq.tokenizers.TOKENIZERS`), each on a real document of its
kind: a new tokenizer added to the registry is held to these without a line here."""

from __future__ import annotations

import json

import pretty_midi
import pytest

from genseq.corpora.sources import Document
from genseq.tokenizers import SPECIAL_TOKENS, TOKENIZERS, Tokenizer, tokenizer_from_dict
from tests.helpers import ROOT, generated_text

KINDS = sorted(TOKENIZERS)


@pytest.fixture
def document(request, chorales) -> str | bytes:
    """A small real document of the tokenizer's kind: text, a folk tune from the Essen collection, a Bach chorale."""
    cls = TOKENIZERS[request.param]
    if cls.reads_midi:
        return chorales[0]
    if cls.output_suffix == ".abc":
        return (ROOT / "tests" / "data" / "low-folk-tune.abc").read_text(encoding="utf-8")
    return generated_text(2_000)


def built(kind: str, document: str | bytes) -> Tokenizer:
    """The kind's tokenizer as `genseq train` builds it for a corpus of this one document."""
    return TOKENIZERS[kind].build([Document("piece", text=document)] if isinstance(document, str) else [])


def as_events(decoded) -> object:
    """A decoded document in a form that compares: text as it is, MIDI as each instrument's notes."""
    if isinstance(decoded, pretty_midi.PrettyMIDI):
        return [(i.program, i.is_drum, [(n.pitch, n.velocity, round(n.start, 6), round(n.end, 6)) for n in i.notes])
                for i in decoded.instruments]
    return decoded


parametrised = pytest.mark.parametrize(("kind", "document"), [(kind, kind) for kind in KINDS],
                                       indirect=["document"], ids=KINDS)


def test_the_registry_names_each_tokenizer_by_its_kind():
    assert KINDS == ["abc", "beat", "char", "midi", "voices"]
    assert all(cls.kind == kind for kind, cls in TOKENIZERS.items())


@parametrised
def test_settings_survive_json_and_to_dict_and_back(kind, document):
    tokenizer = built(kind, document)
    rebuilt = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert type(rebuilt) is type(tokenizer) and rebuilt == tokenizer
    assert rebuilt.encode(document) == tokenizer.encode(document)


@parametrised
def test_special_tokens_are_named_and_come_first_and_a_document_uses_none(kind, document):
    tokenizer = built(kind, document)
    specials = (tokenizer.pad, tokenizer.end_of_document, tokenizer.unknown)
    assert specials == (0, 1, 2) and [tokenizer.token_name(i) for i in specials] == list(SPECIAL_TOKENS)
    ids = tokenizer.encode(document)
    assert ids and all(len(SPECIAL_TOKENS) <= i < tokenizer.vocab_size for i in ids)


@parametrised
def test_every_id_of_the_vocabulary_has_a_name_of_its_own(kind, document):
    tokenizer = built(kind, document)
    names = [tokenizer.token_name(i) for i in range(tokenizer.vocab_size)]
    assert len(set(names)) == tokenizer.vocab_size > len(SPECIAL_TOKENS)


@parametrised
def test_a_decoded_document_encodes_to_the_same_ids_and_decodes_to_the_same_document(kind, document):
    """Text comes back exactly; MIDI comes back on the tokenizer's grid, where a second round trip changes nothing."""
    tokenizer = built(kind, document)
    ids = tokenizer.encode(document)
    decoded = tokenizer.decode(ids)
    if isinstance(document, str):
        assert decoded == document
    again = tokenizer.encode(decoded)
    assert again == ids
    assert as_events(tokenizer.decode(again)) == as_events(decoded)
