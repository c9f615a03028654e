import pytest

from execrl.generation import SamplingParams
from execrl.generation.hf import HFGenerator

pytest.importorskip("torch")
pytest.importorskip("transformers")

PROMPTS = ["def", "def add_1(x, y):\n    return", "def scale"]


@pytest.fixture(scope="module")
def gen(tiny_model):
    return HFGenerator(tiny_model[0], chat=False, batch_size=4)


@pytest.fixture
def new_tokens(gen, monkeypatch):
    """Records, for each model.generate call, how many tokens it generated."""
    counts: list[int] = []
    real = gen.model.generate

    def spy(**kw):
        out = real(**kw)
        counts.append(out.shape[1] - kw["input_ids"].shape[1])
        return out

    monkeypatch.setattr(gen.model, "generate", spy)
    return counts


def test_tiny_model_learned_something(tiny_model, gen):
    assert tiny_model[1] < 2.5  # the fixture's final training loss
    [[text]] = gen.generate(["def add_1(x, y):\n"], SamplingParams(max_new_tokens=12))
    assert "return" in text


def test_n_completions_per_prompt(gen):
    out = gen.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, max_new_tokens=8, seed=0))
    assert [len(o) for o in out] == [3, 3, 3]
    assert all(isinstance(t, str) for o in out for t in o)
    assert gen.generate([], SamplingParams()) == []


def test_greedy_is_deterministic_and_repeats_one_sample(gen, new_tokens):
    params = SamplingParams(n=2, max_new_tokens=16)
    first = gen.generate(PROMPTS, params)
    assert first == gen.generate(PROMPTS, params)
    assert all(o[0] == o[1] and o[0] for o in first)
    assert len(new_tokens) == 2  # one batch per call: greedy samples are computed once per prompt


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(gen):
    import torch

    params = SamplingParams(n=4, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=7)
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    first = gen.generate(PROMPTS, params)
    assert torch.rand(1) == expected
    assert first == gen.generate(PROMPTS, params)
    assert len(set(first[0])) > 1  # the samples of one prompt differ
    assert first != gen.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=16, seed=8))


def test_left_padding_does_not_change_greedy_output(gen):
    params = SamplingParams(max_new_tokens=20)
    alone = [gen.generate([p], params)[0] for p in PROMPTS]
    assert gen.generate(PROMPTS, params) == alone


def test_max_new_tokens_is_respected(gen, new_tokens):
    gen.generate(PROMPTS, SamplingParams(n=2, temperature=1.0, max_new_tokens=5, seed=0))
    assert new_tokens and all(0 < c <= 5 for c in new_tokens)


def test_stop_truncates_and_ends_generation_early(gen, new_tokens):
    [[full]] = gen.generate(["def"], SamplingParams(max_new_tokens=40))
    assert "\n" in full.strip("\n") and len(full) > full.index("\n", 1) + 5
    stop = ["\n    return"]
    [[cut]] = gen.generate(["def"], SamplingParams(max_new_tokens=40, stop=stop))
    assert cut == full[: full.index(stop[0])]
    assert new_tokens[1] < new_tokens[0]  # it ended once its text had the stop string


def test_batch_stops_only_when_every_sequence_stopped(gen, new_tokens):
    params = SamplingParams(max_new_tokens=40, stop=["\n"])
    out = gen.generate(PROMPTS, params)
    assert all("\n" not in o[0] for o in out)
    assert new_tokens[-1] < 40


def test_chat_template_wraps_plain_prompts_and_messages(tiny_model, gen):
    chat = HFGenerator(tiny_model[0])  # chat=None: the tokenizer has a template, so it is used
    assert chat.chat
    params = SamplingParams(max_new_tokens=16)
    rendered = "<|user|>\nwrite add\n<|assistant|>\n"
    expected = gen.generate([rendered], params)[0]
    assert chat.generate(["write add"], params)[0] == expected
    assert chat.generate([[{"role": "user", "content": "write add"}]], params)[0] == expected
    assert expected[0].startswith("def")  # the toy model learned to answer in code


def test_chat_errors(tiny_model, gen, monkeypatch):
    with pytest.raises(ValueError, match="chat template"):
        gen.generate([[{"role": "user", "content": "hi"}]], SamplingParams())
    import transformers

    load = transformers.AutoTokenizer.from_pretrained

    def without_template(*args, **kw):
        tok = load(*args, **kw)
        tok.chat_template = None
        return tok

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", without_template)
    assert not HFGenerator(tiny_model[0]).chat
    with pytest.raises(ValueError, match="chat=True but the tokenizer has no chat template"):
        HFGenerator(tiny_model[0], chat=True)


def test_missing_dependency_is_one_line(monkeypatch):
    import sys

    from execrl.generation import hf

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"^HFGenerator needs torch and transformers: pip install 'execrl\[train\]'$"):
        hf.HFGenerator("any")
