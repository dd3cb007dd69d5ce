"""The rules between sampling options live in one place (`api.SampleRequest.prepare`), with the one-line messages
the CLI and the studio show; what a request leaves out is the model's own."""

from pathlib import Path

import pytest

from genseq import api
from genseq.api.export import Outputs
from genseq.errors import GenseqError

MELODY = "X:1\nM:4/4\nL:1/4\nK:C\nc d e f|"


@pytest.mark.parametrize("model, request_, message", [
    ("folk-abc-small", api.SampleRequest(primer="X:1\n", primer_file=Path("tune.abc")),
     "give --primer or --primer-file, not both"),
    ("bach-chorales-small", api.SampleRequest(melody=MELODY, key="D", output_dir=Path("out")),
     "--melody is the piece's top voice from its start: give it without a primer, --meter, --key or --unit-length"),
    ("bach-chorales-small", api.SampleRequest(melody=MELODY),
     "a harmonised melody is written as .mid files: give --output-dir DIR"),
    ("folk-abc-small", api.SampleRequest(outputs=Outputs(wav=True)),
     "--wav, --png, --score and --report need a music model and --output-dir"),
    ("bach-chorales-small", api.SampleRequest(), "a MIDI model writes .mid files: give --output-dir DIR"),
    ("folk-abc-small", api.SampleRequest(primer="X:1\n", meter="6/8"),
     "--meter, --key and --unit-length make the primer; give them or a primer, not both"),
    ("folk-abc-small", api.SampleRequest({"temperature": 1.0, "beam_size": 4}),
     "--beam-size 4 with --temperature 1.0: beam search ranks by the model's own probabilities; drop --temperature "
     "or use --beam-size 1 to sample"),
    ("folk-abc-small", api.SampleRequest(piece=MELODY, span="1", key="D"),
     "a piece to fill is its own context: give it without a primer, --melody, --meter, --key or --unit-length"),
    ("shakespeare-small", api.SampleRequest({"beam_size": 2}, piece="To be, or [...]"),
     "infilling takes no beam-size: it draws candidates and keeps the best"),
    ("bach-chorales-small", api.SampleRequest(piece="X:1\n", output_dir=Path("out")),
     "a chorale model draws beats of a MIDI file again; give the path of a .mid file, not text"),
    ("folk-abc-small", api.SampleRequest({"voice_leading": True}),
     "--voice-leading keeps four-part writing rules for voices models; this is a abc model (sample it without "
     "--voice-leading)"),
])
def test_each_rule_between_options_is_one_line_before_anything_is_drawn(model, request_, message):
    with pytest.raises(GenseqError) as refused:
        request_.prepare(api.load(model))
    assert str(refused.value) == message


def test_an_existing_output_file_needs_force(tmp_path):
    taken = tmp_path / "out.txt"
    taken.write_text("kept")
    with pytest.raises(GenseqError, match="already exists; pass --force"):
        api.SampleRequest(output=taken).prepare(api.load("folk-abc-small"))
    assert api.SampleRequest(output=taken, force=True).prepare(api.load("folk-abc-small")).primer is None


def test_what_a_request_leaves_out_is_the_models_own_and_its_record_says_what_ran():
    prepared = api.SampleRequest({"length": 30, "seed": 2}, melody=MELODY, output_dir=Path("out")).prepare(
        api.load("bach-chorales-small"))
    assert (prepared.config.temperature, prepared.config.voice_leading) == (0.8, True)
    settings = prepared.settings()
    assert (settings["temperature"], settings["length"], settings["voice_leading"]) == (0.8, 30, None)
    folk = api.SampleRequest({"length": 200, "seed": 1}, meter="6/8", key="G", unit_length="1/8",
                              transpose=2).prepare(
        api.load("folk-abc-small"))
    assert folk.primer == "X:1\nM:6/8\nL:1/8\nK:G\n" and folk.settings()["temperature"] == 1.0
    assert folk.settings()["transpose"] == 2 and folk.draw()[0].startswith("X:1\nM:6/8\nL:1/8\nK:A\n")
