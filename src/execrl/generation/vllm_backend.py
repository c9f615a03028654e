"""Offline generation with vLLM's ``LLM`` engine (a GPU machine with ``pip install 'execrl[vllm]'``)."""

from __future__ import annotations

from typing import Any

from execrl.generation._types import Prompt, SamplingParams, as_messages, truncate_at_stop

INSTALL_HINT = "VLLMGenerator needs vllm (and a GPU): pip install 'execrl[vllm]'"


class VLLMGenerator:
    """Sample with ``vllm.LLM(model, **llm_kwargs)`` (e.g. ``tensor_parallel_size=2``,
    ``gpu_memory_utilization=0.8``, ``dtype="bfloat16"``).

    ``chat`` works as in :class:`~execrl.generation.hf.HFGenerator`: None uses the tokenizer's
    chat template when it has one, True always, False never (plain prompts only).
    """

    def __init__(self, model: str, *, chat: bool | None = None, **llm_kwargs: Any) -> None:
        try:
            import vllm
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, **llm_kwargs)
        has_template = bool(getattr(self.llm.get_tokenizer(), "chat_template", None))
        if chat and not has_template:
            raise ValueError(f"{model}: chat=True but the tokenizer has no chat template")
        self.chat = has_template if chat is None else chat

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions per prompt, in prompt order."""
        if not self.chat and not all(isinstance(p, str) for p in prompts):
            raise ValueError("a chat prompt (list of messages) needs a tokenizer with a chat template and chat != False")
        # vLLM rejects n > 1 and top_p < 1 with greedy sampling; greedy samples are identical anyway.
        sampling = self._vllm.SamplingParams(
            n=1 if params.greedy else params.n,
            temperature=params.temperature,
            top_p=1.0 if params.greedy else params.top_p,
            max_tokens=params.max_new_tokens,
            stop=params.stop or None,
            seed=params.seed,
        )
        if self.chat:
            outputs = self.llm.chat([as_messages(p) for p in prompts], sampling, use_tqdm=False)
        else:
            outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        texts = [[truncate_at_stop(o.text, params.stop) for o in out.outputs] for out in outputs]
        return [t * params.n for t in texts] if params.greedy else texts
