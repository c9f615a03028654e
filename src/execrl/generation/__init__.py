"""Generation: model backends behind one protocol, and tasks -> samples.jsonl.

>>> from execrl.generation import SamplingParams, generate_samples, make_backend
>>> gen = make_backend("openai:http://localhost:8000/v1#my-model")         # doctest: +SKIP
>>> gen.generate(["def inc(x):\\n"], SamplingParams(n=2, temperature=0.8))  # doctest: +SKIP
[['    return x + 1\\n', '    return 1 + x\\n']]

Backends (``make_backend`` scheme, class, what it needs):

- ``hf:``     :class:`~execrl.generation.hf.HFGenerator`, transformers on CPU/GPU (``execrl[train]``)
- ``openai:`` :class:`~execrl.generation.openai_compat.OpenAICompatGenerator`, any
  OpenAI-compatible server: vLLM, TGI, llama.cpp, Ollama (``httpx``)
- ``vllm:``   :class:`~execrl.generation.vllm_backend.VLLMGenerator`, vLLM offline (``execrl[vllm]``, GPU)

Backend modules import their heavy dependencies only when a generator is built.
:class:`FakeGenerator` needs no model, for tests of what comes after generation.
"""

from execrl.generation._backends import BACKENDS, make_backend
from execrl.generation._fake import FakeGenerator
from execrl.generation._types import BackendError, Generator, Message, Prompt, SamplingParams, truncate_at_stop
from execrl.generation.sampling import GenerationStats, generate_samples, prompt_sha

__all__ = [
    "BACKENDS",
    "BackendError",
    "FakeGenerator",
    "GenerationStats",
    "Generator",
    "Message",
    "Prompt",
    "SamplingParams",
    "generate_samples",
    "make_backend",
    "prompt_sha",
    "truncate_at_stop",
]
