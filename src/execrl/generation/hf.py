"""Local generation with Hugging Face transformers: batched, left-padded, seeded, stop-aware."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from execrl.generation._types import BackendError, Prompt, SamplingParams, as_messages, truncate_at_stop

INSTALL_HINT = "HFGenerator needs torch and transformers: pip install 'execrl[train]'"


def _import() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return torch, transformers


class HFGenerator:
    """Sample from a causal LM loaded with ``transformers`` (a hub id or a local directory).

    Prompts are tokenized one by one, sorted by length and padded on the left into batches of
    at most ``batch_size`` sequences (each of the ``n`` samples of a prompt is one sequence).
    With ``chat=None`` a tokenizer's chat template is used when it has one; ``chat=True``
    requires one and ``chat=False`` never uses it (then prompts must be plain strings). A
    plain prompt under a chat template becomes one user message.

    ``device`` defaults to CUDA when available, else CPU; ``dtype`` (``torch.dtype``, a name
    such as ``"bfloat16"``, or ``"auto"`` for the checkpoint's own) defaults to ``"auto"`` on
    GPU and float32 on CPU. Sampling disables top-k (HF's default of 50) so that
    ``temperature``/``top_p`` mean what they mean on vLLM and OpenAI-compatible servers.
    """

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: Any = None,
        batch_size: int = 8,
        chat: bool | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        torch, transformers = _import()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        if model.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(model)):
            raise BackendError(f"no model directory at {model!r}")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:  # not a local model dir, and the hub is unreachable or says no
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"cannot load model {model!r}: {first}") from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise BackendError(f"{model}: the tokenizer has neither a pad nor an eos token, so batches cannot be padded")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat and not has_template:
            raise ValueError(f"{model}: chat=True but the tokenizer has no chat template")
        self.chat = has_template if chat is None else chat

        if dtype is None:
            dtype = "auto" if self.device.startswith("cuda") else torch.float32
        elif isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        # transformers 4.56 renamed ``torch_dtype`` to ``dtype``; older versions would silently ignore ``dtype``.
        new_name = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            model, trust_remote_code=trust_remote_code, **{"dtype" if new_name else "torch_dtype": dtype}
        )
        self.model.to(self.device).eval()
        self._torch = torch

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions (new text only, cut at the first stop string) per prompt."""
        ids = [self._encode(p) for p in prompts]
        copies = 1 if params.greedy else params.n  # greedy samples are identical: compute one
        jobs = sorted((i for i in range(len(ids)) for _ in range(copies)), key=lambda i: -len(ids[i]))
        out: list[list[str]] = [[] for _ in prompts]
        seeded = params.seed is not None
        with self._torch.random.fork_rng(devices=self._cuda_devices()) if seeded else contextlib.nullcontext():
            if seeded:
                self._torch.manual_seed(params.seed)
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                for i, text in zip(batch, self._generate_batch([ids[i] for i in batch], params), strict=True):
                    out[i].append(text)
        return [texts * params.n if params.greedy else texts for texts in out]

    def _encode(self, prompt: Prompt) -> list[int]:
        if self.chat:
            text = self.tokenizer.apply_chat_template(as_messages(prompt), tokenize=False, add_generation_prompt=True)
            return self.tokenizer.encode(text, add_special_tokens=False)  # the template places BOS itself
        if not isinstance(prompt, str):
            raise ValueError("a chat prompt (list of messages) needs a tokenizer with a chat template and chat != False")
        return self.tokenizer.encode(prompt)

    def _generate_batch(self, batch: list[list[int]], params: SamplingParams) -> list[str]:
        enc = self.tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt").to(self.device)
        width = enc["input_ids"].shape[1]
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": not params.greedy,
        }
        if not params.greedy:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs["stopping_criteria"] = [StopOnStrings(self.tokenizer, params.stop, width)]
        with self._torch.inference_mode():
            seqs = self.model.generate(**enc, **kwargs)
        texts = self.tokenizer.batch_decode(seqs[:, width:], skip_special_tokens=True)
        return [truncate_at_stop(t, params.stop) for t in texts]

    def _cuda_devices(self) -> list[int]:
        device = self._torch.device(self.device)
        return [device.index or 0] if device.type == "cuda" else []


class StopOnStrings:
    """A transformers stopping criterion: a sequence is done once its generated text (tokens
    from ``start`` on) contains a stop string, so ``generate`` returns as soon as every
    sequence of the batch has stopped. The completion itself is cut later, on the text.

    It follows ``transformers.StoppingCriteria``'s call protocol (one bool per sequence)
    without subclassing it, so this module imports without transformers.
    """

    def __init__(self, tokenizer: Any, stop: list[str], start: int) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.start = start
        self.done: list[bool] | None = None

    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        if self.done is None:
            self.done = [False] * input_ids.shape[0]
        rows = [r for r, d in enumerate(self.done) if not d]
        # Decode the whole generated text, not a tail window: token boundaries and byte-level
        # merges make a window's text differ from the final text's.
        texts = self.tokenizer.batch_decode(input_ids[rows, self.start :], skip_special_tokens=True)
        for r, text in zip(rows, texts, strict=True):
            self.done[r] = any(s in text for s in self.stop)
        return input_ids.new_tensor(self.done).bool()
