import json
import math

from hypothesis import given
from hypothesis import strategies as st

from genseq.tokenizers import CharTokenizer, tokenizer_from_dict


@given(st.text())
def test_round_trip_is_exact_on_arbitrary_unicode(text):
    tokenizer = CharTokenizer.fit([text])
    assert tokenizer.decode(tokenizer.encode(text)) == text


@given(st.lists(st.text(max_size=50), max_size=5))
def test_encoding_in_pieces_equals_encoding_whole(pieces):
    tokenizer = CharTokenizer.fit(pieces)
    whole = tokenizer.encode("".join(pieces))
    assert [i for piece in pieces for i in tokenizer.encode(piece)] == whole


def test_vocabulary_is_ordered_by_code_point_whatever_the_input_order():
    assert CharTokenizer.fit(["zéa🎵"]).chars == CharTokenizer.fit(["🎵aéz"]).chars == ["a", "z", "é", "🎵"]


def test_special_tokens_are_named_and_come_first():
    tokenizer = CharTokenizer.fit(["ab"])
    names = [tokenizer.token_name(i) for i in (tokenizer.pad, tokenizer.end_of_document, tokenizer.unknown)]
    assert names == ["<pad>", "<eod>", "<unk>"]
    assert tokenizer.vocab_size == 5 and tokenizer.encode("ab") == [3, 4]


def test_unseen_characters_become_the_unknown_token_and_are_named():
    tokenizer = CharTokenizer.fit(["hello"])
    assert tokenizer.encode("hex") == [tokenizer.encode("h")[0], tokenizer.encode("e")[0], tokenizer.unknown]
    assert tokenizer.unknown_symbols("hex€") == ["x", "€"]


def test_tokenizer_survives_json_round_trip():
    tokenizer = CharTokenizer.fit(["Grüße, 世界\n\t"])
    rebuilt = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert rebuilt == tokenizer and rebuilt.encode("世界") == tokenizer.encode("世界")


def test_uniform_baseline_is_log_vocab():
    tokenizer = CharTokenizer.fit(["abc"])
    assert math.isclose(math.log(tokenizer.vocab_size), math.log(6))
