import pytest

from genseq.corpora.sources import Document, builtin_documents, find_documents, split_abc_tunes, split_documents
from genseq.errors import InputError


def test_a_single_file_is_split_by_position_at_a_line_break(tmp_path):
    path = tmp_path / "a.txt"
    text = "".join(f"line {i}\n" for i in range(1000))
    path.write_text(text)
    split = split_documents(find_documents(str(path)), val_fraction=0.1)
    train, val = split.train[0].read(), split.val[0].read()
    assert train + val == text
    assert train.endswith("\n") and abs(len(val) - 0.1 * len(text)) < 20


def test_documents_are_split_by_document_deterministically_by_seed(tmp_path):
    for i in range(20):
        (tmp_path / f"{i:02d}.txt").write_text(f"document {i}\n")
    docs = find_documents(str(tmp_path))
    first, again, other = (split_documents(docs, 0.2, seed) for seed in (1, 1, 2))
    assert len(first.val) == 4 and len(first.train) == 16
    assert [d.name for d in first.val] == [d.name for d in again.val]
    assert [d.name for d in first.val] != [d.name for d in other.val]
    assert {d.name for d in first.val}.isdisjoint(d.name for d in first.train)


def test_a_glob_finds_matching_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.md").write_text("b")
    assert [d.name for d in find_documents(str(tmp_path / "*.txt"))] == [str(tmp_path / "a.txt")]


def test_non_utf8_text_names_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf" + "é au lait".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin.txt is not valid utf-8: byte 3 .*--encoding"):
        find_documents(str(path))[0].read()
    assert find_documents(str(path), encoding="latin-1")[0].read() == "café au lait"


def test_reading_in_pieces_never_splits_a_character(tmp_path):
    path = tmp_path / "u.txt"
    text = "é🎵x" * 1000
    path.write_text(text, encoding="utf-8")
    assert "".join(Document("u", path=str(path)).pieces(size=7)) == text


def test_abc_files_are_cut_into_one_document_per_tune():
    text = "%abc-2.1\n\nX:1\nT:One\nK:G\nGAB|\n\nX:2\nT:Two\nK:D\nDEF|\n"
    assert split_abc_tunes(text) == ["X:1\nT:One\nK:G\nGAB|\n", "X:2\nT:Two\nK:D\nDEF|\n"]


def test_folk_abc_is_built_from_music21_with_one_tune_per_document():
    documents, recipe = builtin_documents("folk-abc")
    assert len(documents) > 12_000 and recipe["tokenizer"] == "abc"
    assert all(doc.text.startswith("X:") for doc in documents[:500])


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown corpus 'nope'; built-in corpora: .*folk-abc"):
        builtin_documents("nope")


def test_the_shakespeare_corpus_is_one_packaged_text_split_at_its_last_tenth():
    documents, recipe = builtin_documents("shakespeare")
    text = documents[0].read()
    assert recipe["tokenizer"] == "char" and len(documents) == 1
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\n") and len(set(text)) == 65
    split = split_documents(documents, val_fraction=0.1)
    train, val = split.train[0].read(), split.val[0].read()
    assert train + val == text and train.endswith("\n")
    assert len(val) == 111_538  # the last tenth (111,540 characters) less the 2 before the next line break
