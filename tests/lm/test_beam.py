"""Beam search (`--beam-size N`): deterministic, seed-free, at least as likely as greedy, exact when wide enough."""

import itertools

import pytest
import torch

from genseq import api
from genseq.errors import ConfigError
from genseq.lm.config import SampleConfig
from genseq.lm.sampling import generate, log_probability
from tests.helpers import assert_one_line_error, run_cli, trained_looking_model


def score(model: api.TrainedModel, primer: str, ids: list[int]) -> float:
    eod = model.tokenizer.end_of_document
    return log_probability(model.network, model.encode_primer(primer), ids, eod, model.payload["prelude"])


def test_beam_size_one_is_the_random_sampler(trained_run):
    model = api.load(trained_run)
    drawn = model.sample_ids("the ", length=80, num_samples=3, seed=5)
    assert model.sample_ids("the ", length=80, num_samples=3, seed=5, beam_size=1) == drawn
    assert model.sample_ids("the ", length=80, num_samples=3, seed=6, beam_size=1) != drawn


def test_beam_search_is_deterministic_whatever_the_seed(trained_run):
    model = api.load(trained_run)
    found = [model.sample_ids("a dog ", length=60, beam_size=4, num_samples=2, seed=seed) for seed in (1, 2, None)]
    assert found[0] == found[1] == found[2] and found[0][0] != found[0][1]


@pytest.mark.parametrize("primer", ["the ", "a dog ", "my friend "])
def test_beam_search_finds_a_continuation_at_least_as_likely_as_greedy(trained_run, primer):
    """Scored independently, in one teacher-forced pass over the whole output."""
    model = api.load(trained_run)
    greedy = model.sample_ids(primer, length=80, temperature=0, stop_at_end=False)[0]
    beams = model.sample_ids(primer, length=80, beam_size=4, num_samples=4, stop_at_end=False)
    assert all(len(ids) == 80 for ids in [greedy, *beams])
    scores = [score(model, primer, ids) for ids in beams]
    assert scores[0] >= score(model, primer, greedy) - 1e-4
    assert scores == sorted(scores, reverse=True) and len({tuple(ids) for ids in beams}) == 4


def test_a_beam_as_wide_as_every_prefix_is_an_exhaustive_search():
    """With beam_size = vocab ** (length - 1) no prefix is ever dropped: the beams are the best sequences."""
    model = trained_looking_model(seed=4, vocab_size=5, hidden_size=16)
    primer, length = [3, 1], 3
    config = SampleConfig(length=length, beam_size=5 ** (length - 1), num_samples=6, stop_at_end=False)
    found = generate(model, primer, config, end_token=0)
    every = sorted(itertools.product(range(5), repeat=length),
                   key=lambda ids: -log_probability(model, primer, ids, end_token=0))
    assert found == [list(ids) for ids in every[:6]]


def test_a_piece_ends_where_the_best_beams_choose_its_end(trained_run):
    model = api.load(trained_run)
    eod = model.tokenizer.end_of_document
    with torch.no_grad():  # every piece ends after its first token (a first token is never the end)
        model.network.head.bias[eod] += 30.0
    greedy = model.sample_ids(length=500, temperature=0)
    beams = model.sample_ids(length=500, beam_size=4, num_samples=4)
    assert [len(ids) for ids in beams] == [1, 1, 1, 1] and beams[0] == greedy[0]
    with torch.no_grad():
        first = torch.log_softmax(model.network(torch.tensor([model.payload["prelude"]]))[0][0, -1], -1)
    first[eod] = float("-inf")
    assert [ids[0] for ids in beams] == first.topk(4).indices.tolist()
    assert all(len(ids) == 500 for ids in model.sample_ids(length=500, beam_size=4, num_samples=4, stop_at_end=False))


def test_pieces_that_end_rank_first_by_log_probability_per_token_then_beams_cut_at_the_length():
    """On folk-abc-small a beam that loops until the length is likelier per token than the tunes that end."""
    model, primer = api.load("checkpoints/folk-abc-small.pt"), "X:1\nK:D\n"
    eod = model.tokenizer.end_of_document
    found = model.sample_ids(primer, length=90, beam_size=4, num_samples=4)  # two of its tunes end within 90
    ended = [len(ids) < 90 for ids in found]
    assert ended == [True, True, False, False]
    means = [score(model, primer, ids + [eod] * done) / (len(ids) + done) for ids, done in zip(found, ended)]
    assert means[:2] == sorted(means[:2], reverse=True) and means[2] > means[0]


def test_beam_search_takes_none_of_a_checkpoints_sampling_distribution_but_keeps_its_rules():
    """bach-chorales-small names temperature 0.8 and voice leading; beam search ranks by the model's own
    distribution, under the same rules."""
    model = api.load("checkpoints/bach-chorales-small.pt")
    assert (model.sample_config().temperature, model.sample_config().voice_leading) == (0.8, True)
    config = model.sample_config(beam_size=4)
    assert (config.temperature, config.top_k, config.top_p, config.voice_leading) == (None, None, None, True)
    assert config.effective_temperature == 1.0


@pytest.mark.parametrize("options, message", [
    ({"beam_size": 0}, "--beam-size must be positive"),
    ({"beam_size": -2}, "--beam-size must be positive"),
    ({"beam_size": 4, "temperature": 0.8}, "--beam-size 4 with --temperature 0.8"),
    ({"beam_size": 4, "temperature": 0.0}, "--beam-size 4 with --temperature 0.0"),
    ({"beam_size": 4, "temperature": 1.0}, "--beam-size 4 with --temperature 1.0"),
    ({"beam_size": 4, "top_k": 5}, "--beam-size 4 with --top-k 5"),
    ({"beam_size": 4, "top_p": 0.9}, "--beam-size 4 with --top-p 0.9"),
    ({"beam_size": 2, "num_samples": 3}, "--beam-size 2 with --num-samples 3"),
    ({"beam_size": 4, "precision": "bf16"}, "--beam-size 4 with --precision bf16"),
])
def test_bad_beam_settings_are_refused(options, message):
    with pytest.raises(ConfigError, match="^" + message.replace("+", r"\+")):
        SampleConfig(**options)


def test_any_temperature_given_with_beam_search_is_refused_by_the_python_api_one_included():
    model = api.load("folk-abc-small")
    for temperature in (1, 1.0, 0.7):
        with pytest.raises(ConfigError) as refused:
            model.sample(length=20, beam_size=4, temperature=temperature)
        assert str(refused.value) == (f"--beam-size 4 with --temperature {temperature}: beam search ranks by the "
                                      "model's own probabilities; drop --temperature or use --beam-size 1 to sample")


@pytest.mark.slow
@pytest.mark.parametrize("args, fragments", [
    (["--beam-size", "0"], ["--beam-size must be positive"]),
    (["--beam-size", "4", "--top-k", "5"], ["--beam-size 4", "--top-k 5"]),
])
def test_bad_beam_settings_are_one_line_errors_on_the_cli(trained_run, args, fragments):
    assert_one_line_error(run_cli("sample", str(trained_run), *args), *fragments)


@pytest.mark.parametrize("temperature", ["1", "0.8"])
def test_the_cli_refuses_temperature_1_with_beam_search_as_it_refuses_any_other(trained_run, temperature):
    result = run_cli("sample", str(trained_run), "--temperature", temperature, "--beam-size", "4")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"error: --beam-size 4 with --temperature {float(temperature)}: beam search ranks by "
                             "the model's own probabilities; drop --temperature or use --beam-size 1 to sample\n")


@pytest.mark.slow
def test_cli_beam_search_writes_its_files_the_same_for_any_seed(trained_run, tmp_path):
    written = []
    for seed in ("1", "2"):
        folder = tmp_path / seed
        result = run_cli("sample", str(trained_run), "--beam-size", "4", "--num-samples", "2", "--length", "60",
                         "--primer", "the ", "--seed", seed, "--output-dir", str(folder), "--quiet")
        assert result.returncode == 0, result.stderr
        written.append([(folder / f"sample-0{i}.txt").read_text(encoding="utf-8") for i in (1, 2)])
    assert written[0] == written[1] and written[0][0] != written[0][1]
    assert all(text.startswith("the ") for text in written[0])
