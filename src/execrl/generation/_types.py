"""What every backend shares: the sampling parameters, the ``Generator`` protocol, and stop handling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict[str, str]
Prompt = str | list[Message]
"""A plain prompt (continued as is) or a chat conversation (``[{"role": ..., "content": ...}]``)."""


class BackendError(RuntimeError):
    """A backend could not produce completions (server unreachable, retries exhausted, bad
    answer, missing optional dependency). The message is one line, fit to show a user."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. The same values mean the same thing on every backend; each field's
    ``metadata["help"]`` is its one-line doc (for ``--help``)."""

    n: int = field(default=1, metadata={"help": "Completions per prompt."})
    temperature: float = field(
        default=0.0, metadata={"help": "Softmax temperature; 0 means greedy decoding (the n completions are then identical)."}
    )
    top_p: float = field(
        default=1.0, metadata={"help": "Nucleus sampling: sample from the smallest set of tokens whose probability reaches top_p."}
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens generated per completion, prompt not counted."})
    stop: list[str] = field(
        default_factory=list, metadata={"help": "Strings that end a completion; it is cut before the first one (excluded)."}
    )
    seed: int | None = field(default=None, metadata={"help": "Sampling seed for reproducible runs; None leaves it unseeded."})

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an integer >= 1, got {self.n!r}")
        if not self.temperature >= 0:  # also rejects NaN
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop must be a list of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", list(self.stop))

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic (temperature 0)."""
        return self.temperature == 0


@runtime_checkable
class Generator(Protocol):
    """A model backend: ``n`` completions for each prompt, in prompt order.

    A completion is only the newly generated text (never the prompt), cut before the first
    stop string.
    """

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]: ...


def truncate_at_stop(text: str, stop: list[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if -1 < i < cut:
            cut = i
    return text[:cut]


def as_messages(prompt: Prompt) -> list[Message]:
    """A prompt as a chat conversation: a plain string becomes one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
