import pytest
import torch

from genseq import api
from genseq.errors import ConfigError
from genseq.lm.config import SampleConfig
from genseq.lm.fastpath import int8_kernel
from genseq.lm.runtime import _cpu_runs_bf16, cpu_supports_bf16
from genseq.lm.sampling import generate, next_token_probs, step_precision
from tests.helpers import DEVICES, assert_draws_follow, generated_text, trained_looking_model


def test_same_seed_gives_identical_samples(trained_run):
    model = api.load(trained_run)
    first = model.sample("the ", length=80, num_samples=3, seed=5)
    assert first == model.sample("the ", length=80, num_samples=3, seed=5)
    assert first != model.sample("the ", length=80, num_samples=3, seed=6)


def test_a_trained_model_writes_words_of_its_corpus(trained_run):
    text = api.load(trained_run).sample("the cat ", length=200, temperature=0.5, seed=1, stop_at_end=False)[0]
    words = {"sees", "likes", "follows", "finds", "calls", "the", "moon.", "sea.", "river."}
    assert sum(word in words for word in text.split()) >= 10, text


def test_temperature_zero_is_greedy_and_deterministic(trained_run):
    model = api.load(trained_run)
    a = model.sample("a dog ", length=50, temperature=0, seed=1)
    assert a == model.sample("a dog ", length=50, temperature=0, seed=2)


def test_several_samples_in_one_batch_match_one_at_a_time_under_greedy(trained_run):
    model = api.load(trained_run)
    batch = model.sample("my ", length=40, temperature=0, num_samples=3)
    assert batch == [model.sample("my ", length=40, temperature=0)[0]] * 3


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_low_precision_sampling_agrees_with_fp32_on_a_trained_model(trained_run, precision, cpu_view):
    """Rounding the products may part samples at a near tie ('follows' or 'finds'), never from the corpus's
    language: greedy text agrees on the first sentence, and every word after is one of the grammar's."""
    if precision == "bf16" and not cpu_supports_bf16():
        pytest.skip("bf16 sampling needs native bf16 (AVX512-BF16 or AMX); this CPU refuses it (next test)")
    model = api.load(trained_run)
    fp32 = model.sample("the ", length=200, temperature=0, precision="fp32", stop_at_end=False)[0]
    low = model.sample("the ", length=200, temperature=0, precision=precision, stop_at_end=False)[0]
    assert fp32.splitlines()[0] == low.splitlines()[0]
    words = set(generated_text(5000).split())
    assert set(low.split()[:-1]) <= words, low


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_keeps_exactly_k_tokens(device):
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]], device=device)
    probs = next_token_probs(logits, temperature=1.0, top_k=2, top_p=None).cpu()
    assert (probs > 0).sum() == 2 and probs[0, 3:].sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_top_p_keeps_the_smallest_set_reaching_the_mass(device):
    probs_in = torch.tensor([[0.5, 0.3, 0.15, 0.05]], device=device)
    probs = next_token_probs(probs_in.log(), temperature=1.0, top_k=None, top_p=0.8).cpu()
    assert (probs > 0).tolist() == [[True, True, False, False]]
    assert torch.allclose(probs, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, None, None), (0.6, None, None), (1.5, None, None), (1.0, 4, None), (1.0, None, 0.7), (0.8, 6, 0.9),
])
def test_generated_tokens_follow_temperature_top_k_and_top_p(device, temperature, top_k, top_p):
    """The first new token of many samples, drawn by `generate` on `device`, follows next_token_probs."""
    model = trained_looking_model(seed=3, vocab_size=12, hidden_size=16).to(device)
    config = SampleConfig(length=1, num_samples=6000, seed=2, temperature=temperature, top_k=top_k, top_p=top_p,
                          stop_at_end=False)
    tokens = torch.tensor(generate(model, [3, 4], config, end_token=0))
    with torch.no_grad():
        logits, _ = model(torch.tensor([[0, 3, 4]], device=device))  # the prelude (the end token), then the primer
    probs = next_token_probs(logits[:, -1], temperature, top_k, top_p)[0]
    assert_draws_follow(tokens, probs, atol=0.025)  # 6,000 draws: a frequency's standard deviation is under 0.0065


def test_sampling_stops_at_end_of_document_unless_told_not_to(trained_run):
    model = api.load(trained_run)
    with torch.no_grad():  # make the end of a document likely after a few characters
        model.network.head.bias[model.tokenizer.end_of_document] += 30.0  # ends every sample at once, but
    # a sample always holds at least one new token
    ids = model.sample_ids(length=500, num_samples=4, seed=3)
    assert all(model.tokenizer.end_of_document not in row and 1 <= len(row) < 500 for row in ids)
    assert all(len(row) == 500 for row in model.sample_ids(length=500, num_samples=4, seed=3, stop_at_end=False))


def test_samples_start_from_the_state_after_the_checkpoints_prelude(trained_run):
    """Training carries the state across documents, so a sample starts after a real document, not from zeros."""
    model = api.load(trained_run)
    prelude = model.payload["prelude"]
    eod = model.tokenizer.end_of_document
    assert prelude[-1] == eod and eod not in prelude[:-1] and len(prelude) > 100  # the first validation document
    config = SampleConfig(length=60, num_samples=2, seed=3)
    warm = generate(model.network, [], config, eod, prelude=prelude)
    assert model.sample_ids(length=60, num_samples=2, seed=3) == warm
    assert warm != generate(model.network, [], config, eod)  # a cold start


def test_auto_sampling_takes_a_native_fast_kernel_and_refuses_emulated_bf16(cpu_view):
    """Without native bf16, bf16 would run emulated, many times slower: refused; int8 runs through fbgemm."""
    if cpu_supports_bf16():
        assert step_precision("auto", 1) in ("int8", "bf16") and step_precision("auto", 64) == "bf16"
        return
    with pytest.raises(ConfigError, match="--precision bf16: this CPU has no native bf16"):
        step_precision("bf16", 1)
    if int8_kernel() is None:
        pytest.skip(f"this PyTorch ({torch.__version__}) runs no int8 kernel here: auto is fp32")
    assert int8_kernel() == "fbgemm" and step_precision("auto", 1) == step_precision("auto", 64) == "int8"


def test_the_cpus_bf16_probe_gives_the_same_answer_inside_the_sampler():
    """The sampler asks first, under inference mode, where the probe's backward pass cannot run: it used to
    answer False there, and every `genseq sample` in a fresh process fell back to fp32."""
    _cpu_runs_bf16.cache_clear()
    with torch.inference_mode():
        inside = _cpu_runs_bf16()
    _cpu_runs_bf16.cache_clear()
    assert inside == _cpu_runs_bf16()


def test_greedy_tokens_are_the_models_most_likely_ones_on_both_paths():
    """Temperature 0 is one rule (`sampling.greedy`) on the fast and the plain path: each token is the argmax of
    the model's logits after the tokens before it, whatever the seed."""
    model = trained_looking_model(seed=5, vocab_size=12, hidden_size=16)
    config = SampleConfig(length=30, temperature=0, num_samples=2, stop_at_end=False, precision="fp32")
    for fast in (True, False):
        rows = generate(model, [3, 4], config, end_token=0, fast=fast)
        assert rows[0] == rows[1]
        with torch.no_grad():
            logits, _ = model(torch.tensor([[0, 3, 4, *rows[0][:-1]]]))
        assert logits[0, 2:].argmax(-1).tolist() == rows[0]


def test_a_mistyped_sampling_option_is_one_line_naming_the_one_meant(trained_run):
    model = api.load(trained_run)
    with pytest.raises(ConfigError, match="^unknown sampling option 'temprature'; did you mean 'temperature'\\?$"):
        model.sample("the ", temprature=0.5)
    with pytest.raises(ConfigError, match="^unknown sampling option 'colour'; use one of length, temperature, "):
        api.load("bach-chorales-small").harmonize("X:1\nM:4/4\nL:1/4\nK:C\nc d e f|", colour=1)


def test_a_trained_model_says_what_it_is():
    model = api.load("folk-abc-small")
    assert repr(model) == (f"TrainedModel(kind='abc', shape='2x384', vocab_size=92, "
                           f"path={str(model.path)!r})")
