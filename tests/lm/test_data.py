import numpy as np
import pytest

from genseq.corpora.sources import find_documents
from genseq.lm.data import build_token_cache, cache_key, first_document, load_token_cache
from genseq.tokenizers import CharTokenizer, MidiTokenizer
from tests.helpers import band_with_tempo_changes


def test_a_midi_cache_is_byte_identical_with_one_or_four_workers(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    for i in range(24):
        (folder / f"{i:02d}.mid").write_bytes(band_with_tempo_changes(i))
    (folder / "bad.mid").write_bytes(b"MThd garbage")
    documents = find_documents(str(folder), "midi")
    one = build_token_cache(documents, MidiTokenizer(), tmp_path / "one.bin", workers=1)
    four = build_token_cache(documents, MidiTokenizer(), tmp_path / "four.bin", workers=4)
    assert (tmp_path / "one.bin").read_bytes() == (tmp_path / "four.bin").read_bytes()
    assert one.documents == four.documents == 24 and [n for n, _ in four.skipped] == [str(folder / "bad.mid")]


def test_cache_holds_documents_separated_by_end_of_document(tmp_path):
    for name, text in (("a.txt", "abc"), ("b.txt", "ba")):
        (tmp_path / name).write_text(text)
    documents = find_documents(str(tmp_path))
    tokenizer = CharTokenizer.fit(["abc"])
    cache = build_token_cache(documents, tokenizer, tmp_path / "c.bin")
    eod = tokenizer.end_of_document
    assert cache.tokens.tolist() == tokenizer.encode("abc") + [eod] + tokenizer.encode("ba") + [eod]
    assert isinstance(load_token_cache(tmp_path / "c.bin").tokens, np.memmap)


def test_cache_key_changes_when_a_file_or_the_tokenizer_changes(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abc")
    tokenizer = CharTokenizer.fit(["abc"]).to_dict()
    before = cache_key(find_documents(str(path)), tokenizer)
    assert before == cache_key(find_documents(str(path)), tokenizer)
    assert before != cache_key(find_documents(str(path)), CharTokenizer.fit(["abcd"]).to_dict())
    path.write_text("abcd")
    assert before != cache_key(find_documents(str(path)), tokenizer)


def test_first_document_is_the_first_whole_document_with_its_end_token():
    tokens = np.array([5, 6, 0, 7, 8, 0], dtype=np.int32)
    assert first_document(tokens, end_token=0) == [5, 6, 0]
    assert first_document(tokens, end_token=0, limit=2) == [6, 0]
    assert first_document(tokens[:2], end_token=0) == []
    far = np.ones((1 << 20) + 10, dtype=np.int32)
    far[(1 << 20) + 3] = 0  # past the first chunk of the scan
    assert first_document(far, end_token=0, limit=4) == [1, 1, 1, 0]


def test_a_second_prepare_of_unchanged_files_reads_no_document(tmp_path, monkeypatch):
    from genseq import api
    from genseq.api import data

    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i:02d}.txt").write_text(f"document number {i}\n" * 50)
    first = api.prepare_data(str(folder), progress=False)

    def no_reading(*args, **kwargs):
        raise AssertionError("documents were read again")

    with monkeypatch.context() as patched:
        patched.setattr(data, "_documents", no_reading)
        again = api.prepare_data(str(folder), progress=False)
        assert np.array_equal(again.train.tokens, first.train.tokens) and again.tokenizer == first.tokenizer
        assert again.description == first.description
        with pytest.raises(AssertionError, match="read again"):  # other settings: another record
            api.prepare_data(str(folder), progress=False, seed=2)
    (folder / "12.txt").write_text("a new document with new letters: xyzq\n")  # a new file is seen
    grown = api.prepare_data(str(folder), progress=False)
    assert grown.description["documents"] == 13 and "q" in grown.tokenizer.to_dict()["chars"]
