"""The CodeRL critic as a model (Le et al. 2022, "CodeRL", arXiv:2207.01780, sec. 3.2): its
outcome classes, the label of a verdict, and :class:`Critic`, a causal LM's backbone with a
token-level head whose max over a program's tokens predicts the program's outcome. Trained by
``execrl train critic`` (:mod:`execrl.training.critic`), used by ``critic_pg`` and to rank
samples."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from execrl.errors import DataError
from execrl.sandbox import Status
from execrl.training._dist import processes

__all__ = ["OUTCOMES", "PASSED", "Critic", "balanced_class_weights", "masked_max_pool", "outcome_class",
           "ranking_metrics"]

OUTCOMES = ("compile_error", "runtime_error", "failed_test", "passed")
"""CodeRL's outcome classes; a class's index is its logit's index."""

PASSED = OUTCOMES.index("passed")

_CLASS_OF_STATUS: dict[Status, int | None] = {
    Status.SYNTAX_ERROR: 0,
    Status.ERROR: 1, Status.TIMEOUT: 1, Status.MEMORY_LIMIT: 1, Status.OUTPUT_LIMIT: 1, Status.CRASHED: 1,
    Status.FAILED: 2,
    Status.PASSED: 3,
    Status.SANDBOX_ERROR: None,
}


def outcome_class(status: str | Status) -> int | None:
    """The CodeRL class (index into :data:`OUTCOMES`) of a verdict status; None for
    ``sandbox_error``, which is the harness's fault and never labels a program."""
    return _CLASS_OF_STATUS[Status(status)]


def masked_max_pool(x: Any, mask: Any) -> Any:
    """Max over each row's valid positions: the program-level logits from the token logits.

    Shapes: ``x`` ``[B, T, C]``; ``mask`` ``[B, T]`` (nonzero: a program token); returns
    ``[B, C]``. Equation: ``out[b, c] = max_{t : mask[b, t]} x[b, t, c]``; a row without a
    valid token gives 0. (CodeRL's released code max-pools its head's per-token logits; the
    paper writes the pool on the hidden states before a linear layer.)
    """
    import torch

    valid = mask.to(torch.bool).unsqueeze(-1)
    pooled = x.masked_fill(~valid, float("-inf")).amax(dim=1)
    return torch.where(valid.any(dim=1), pooled, torch.zeros_like(pooled))


def balanced_class_weights(labels: list[int], n_classes: int = len(OUTCOMES)) -> list[float]:
    """``w_c = N / (K * n_c)`` for the ``K`` classes present among the ``N`` labels (each
    present class then weighs the same in total); 0 for absent classes."""
    counts = Counter(labels)
    return [len(labels) / (len(counts) * counts[c]) if counts[c] else 0.0 for c in range(n_classes)]


def ranking_metrics(task_ids: list[str], passed: list[bool], scores: list[float]) -> dict[str, float | int]:
    """Means over tasks of: ``ranked_pass@1``, whether the top-scored sample passes (the first
    one on ties); ``random_pass@1``, ``c / n`` (the unbiased pass@1 of one random sample);
    ``oracle_pass@n``, whether any sample passes."""
    by_task: dict[str, list[tuple[float, bool]]] = {}
    for tid, ok, score in zip(task_ids, passed, scores, strict=True):
        by_task.setdefault(tid, []).append((score, bool(ok)))
    if not by_task:
        return {"tasks": 0}
    ranked = [max(rows, key=lambda r: r[0])[1] for rows in by_task.values()]  # max keeps the first of ties
    return {"tasks": len(by_task),
            "ranked_pass@1": sum(ranked) / len(by_task),
            "random_pass@1": sum(sum(ok for _, ok in rows) / len(rows) for rows in by_task.values()) / len(by_task),
            "oracle_pass@n": sum(any(ok for _, ok in rows) for rows in by_task.values()) / len(by_task)}


def _head(hidden: int, head_hidden: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(hidden, head_hidden), torch.nn.ReLU(),
                               torch.nn.Linear(head_hidden, len(OUTCOMES)))


class Critic:
    """A causal LM's backbone (``AutoModel``) with a token-level head (CodeRL's: hidden -> 128
    -> ReLU -> 4 logits per token); the program-level logits are the head's logits max-pooled
    over the program's tokens (:func:`masked_max_pool`).

    Input: the prompt's tokens, then the program's and EOS; only the program's tokens (and EOS)
    are pooled. ``program`` is the text after the prompt (a completion). The prompt is cut from
    the left to fit ``max_length``; the program never is, so :meth:`token_scores` lines up with
    the program's own tokens.
    """

    def __init__(self, backbone: Any, tokenizer: Any, head: Any, max_length: int = 256) -> None:
        self.backbone, self.tokenizer, self.head, self.max_length = backbone, tokenizer, head, max_length
        self.device = next(backbone.parameters()).device
        self.head.to(self.device)

    @classmethod
    def from_lm(cls, model: str, head_hidden: int = 128, max_length: int = 256, seed: int = 0) -> Critic:
        """A critic with ``model``'s backbone and a fresh head (seeded)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        backbone = AutoModelForCausalLM.from_pretrained(model).base_model  # the LM without its output layer
        torch.manual_seed(seed)
        backbone.to(processes().torch_device)
        return cls(backbone, AutoTokenizer.from_pretrained(model), _head(backbone.config.hidden_size, head_hidden),
                   max_length)

    @classmethod
    def load(cls, path: str) -> Critic:
        """The critic :meth:`save` wrote to ``path``."""
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        info_path = os.path.join(path, "critic.json")
        if not os.path.exists(info_path):
            raise DataError(f"{path}: not a critic directory (no critic.json)")
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        if tuple(info.get("classes", ())) != OUTCOMES:
            raise DataError(f"{info_path}: classes {info.get('classes')} are not {list(OUTCOMES)}")
        backbone = AutoModel.from_pretrained(path).to(processes().torch_device)
        head = _head(backbone.config.hidden_size, info["head_hidden"])
        head.load_state_dict(load_file(os.path.join(path, "head.safetensors")))
        return cls(backbone, AutoTokenizer.from_pretrained(path), head, info["max_length"])

    def save(self, path: str) -> None:
        """Backbone and tokenizer (``save_pretrained``), ``head.safetensors`` and ``critic.json``."""
        from safetensors.torch import save_file

        os.makedirs(path, exist_ok=True)
        self.backbone.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()},
                  os.path.join(path, "head.safetensors"))
        info = {"classes": list(OUTCOMES), "head_hidden": self.head[0].out_features, "max_length": self.max_length,
                "pool": "max over the program's tokens of the head's token logits"}
        with open(os.path.join(path, "critic.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)

    def parameters(self) -> list[Any]:
        return [*self.backbone.parameters(), *self.head.parameters()]

    def train(self, mode: bool = True) -> None:
        self.backbone.train(mode)
        self.head.train(mode)

    def encode(self, prompt: str, program: str) -> tuple[list[int], int]:
        """``(token ids, index of the program's first token)``."""
        prompt_ids = self.tokenizer.encode(prompt)
        eos = [] if self.tokenizer.eos_token_id is None else [self.tokenizer.eos_token_id]
        program_ids = self.tokenizer.encode(program, add_special_tokens=False) + eos
        keep = max(self.max_length - len(program_ids), 0)
        prompt_ids = prompt_ids[max(len(prompt_ids) - keep, 0):]
        return prompt_ids + program_ids, len(prompt_ids)

    def token_logits(self, encoded: list[tuple[list[int], int]]) -> tuple[Any, Any]:
        """``([B, T, 4] logits per token, [B, T] mask of the program's tokens)`` (right-padded)."""
        import torch

        width = max(len(ids) for ids, _ in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        program = torch.zeros((len(encoded), width), dtype=torch.bool)
        for i, (ids, start) in enumerate(encoded):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            program[i, start : len(ids)] = True
        hidden = self.backbone(input_ids=input_ids.to(self.device),
                               attention_mask=attention.to(self.device)).last_hidden_state
        return self.head(hidden), program.to(self.device)

    def logits(self, encoded: list[tuple[list[int], int]]) -> Any:
        """Program-level logits ``[B, 4]``."""
        return masked_max_pool(*self.token_logits(encoded))

    def predict(self, prompts: list[str], programs: list[str], batch_size: int = 16) -> Any:
        """Outcome probabilities ``[N, 4]`` (columns in :data:`OUTCOMES` order; rows sum to 1)."""
        import torch

        encoded = [self.encode(p, q) for p, q in zip(prompts, programs, strict=True)]
        self.train(False)
        with torch.inference_mode():
            out = [self.logits(encoded[i : i + batch_size]).softmax(-1).float().cpu()
                   for i in range(0, len(encoded), batch_size)]
        return torch.cat(out) if out else torch.zeros((0, len(OUTCOMES)))

    def pass_probability(self, prompts: list[str], programs: list[str], batch_size: int = 16) -> Any:
        """The probability of ``passed`` per program, ``[N]``."""
        return self.predict(prompts, programs, batch_size)[:, PASSED]

    def token_scores(self, prompt: str, program: str, label: int) -> Any:
        """``q(w_t)``: the probability of class ``label`` at each of the program's tokens,
        ``[T]`` (``tokenizer.encode(program, add_special_tokens=False)``'s tokens, EOS left out)."""
        import torch

        ids, start = self.encode(prompt, program)
        self.train(False)
        with torch.inference_mode():
            logits, _ = self.token_logits([(ids, start)])
        n = len(ids) - start - (self.tokenizer.eos_token_id is not None)
        return logits[0, start : start + n].softmax(-1)[:, label].float().cpu()
