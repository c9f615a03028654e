import importlib.util
import sys
import types
from types import SimpleNamespace

import pytest

from execrl.generation import SamplingParams, make_backend


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` module recording what VLLMGenerator asks of it."""
    calls = []

    class LLM:
        def __init__(self, model, **kw):
            calls.append(("init", model, kw))

        def get_tokenizer(self):
            return SimpleNamespace(chat_template="{{ x }}")

        def _answer(self, kind, prompts, sp):
            calls.append((kind, prompts, sp))
            texts = [f"{i} END more" for i in range(sp.n)]
            return [SimpleNamespace(outputs=[SimpleNamespace(text=t) for t in texts]) for _ in prompts]

        def generate(self, prompts, sp, use_tqdm=True):
            return self._answer("generate", prompts, sp)

        def chat(self, conversations, sp, use_tqdm=True):
            return self._answer("chat", conversations, sp)

    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    return calls


def test_maps_params_and_routes_chat(fake_vllm):
    gen = make_backend("vllm:some/model", tensor_parallel_size=2)
    assert gen.chat  # the tokenizer has a template
    out = gen.generate(["a", [{"role": "user", "content": "b"}]], SamplingParams(n=2, temperature=0.7, stop=[" END"], seed=3))
    assert out == [["0", "1"], ["0", "1"]]
    init, (kind, prompts, sp) = fake_vllm
    assert init == ("init", "some/model", {"tensor_parallel_size": 2})
    assert kind == "chat" and prompts == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    assert vars(sp) == {"n": 2, "temperature": 0.7, "top_p": 1.0, "max_tokens": 512, "stop": [" END"], "seed": 3}


def test_plain_prompts_and_greedy(fake_vllm):
    from execrl.generation.vllm_backend import VLLMGenerator

    gen = VLLMGenerator("m", chat=False)
    assert gen.generate(["a"], SamplingParams(n=3, top_p=0.5)) == [["0 END more"] * 3]
    kind, prompts, sp = fake_vllm[-1]
    assert (kind, prompts, sp.n, sp.top_p, sp.stop) == ("generate", ["a"], 1, 1.0, None)
    with pytest.raises(ValueError, match="chat"):
        gen.generate([[{"role": "user", "content": "b"}]], SamplingParams())


def test_missing_vllm_is_one_line(monkeypatch):
    from execrl.generation.vllm_backend import VLLMGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"^VLLMGenerator needs vllm \(and a GPU\): pip install 'execrl\[vllm\]'$"):
        VLLMGenerator("m")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_real_vllm_on_the_tiny_model(tiny_model):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vllm needs a GPU")
    from execrl.generation.vllm_backend import VLLMGenerator

    gen = VLLMGenerator(tiny_model[0], chat=False, gpu_memory_utilization=0.2, enforce_eager=True)
    greedy = SamplingParams(n=2, max_new_tokens=20)
    out = gen.generate(["def", "def scale"], greedy)
    assert [len(o) for o in out] == [2, 2] and out == gen.generate(["def", "def scale"], greedy)
    [[cut]] = gen.generate(["def"], SamplingParams(max_new_tokens=20, stop=["\n"]))
    assert "\n" not in cut
    sampled = SamplingParams(n=3, temperature=1.0, max_new_tokens=20, seed=1)
    assert gen.generate(["def"], sampled) == gen.generate(["def"], sampled)
