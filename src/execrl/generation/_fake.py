"""A generator without a model, for tests of everything downstream of generation."""

from __future__ import annotations

from collections.abc import Callable

from execrl.generation._types import Prompt, SamplingParams, truncate_at_stop


def _echo(prompt: Prompt, i: int) -> str:
    return f"    return {i}\n"


class FakeGenerator:
    """Completion ``i`` of a prompt is ``complete(prompt, i)`` (by default ``"    return i\\n"``),
    cut at the stop strings. Every call is recorded in ``calls`` as ``(prompts, params)``."""

    def __init__(self, complete: Callable[[Prompt, int], str] = _echo) -> None:
        self.complete = complete
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions per prompt, in prompt order."""
        self.calls.append((list(prompts), params))
        return [[truncate_at_stop(self.complete(p, i), params.stop) for i in range(params.n)] for p in prompts]
