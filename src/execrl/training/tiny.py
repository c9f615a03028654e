"""A tiny Llama-style model and its tokenizer, built from local text only.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a corpus we generate (small
Python functions), a ``LlamaForCausalLM`` of a few tens of thousands of parameters is
initialised and pre-trained for a few dozen steps, and both are saved with
``save_pretrained``, so every consumer loads them through the real ``from_pretrained`` path.
It is the default model of CPU demos and of the tests.

>>> from execrl.training.tiny import make_tiny_model     # doctest: +SKIP
>>> path, loss = make_tiny_model("runs/tiny")            # doctest: +SKIP
"""

from __future__ import annotations

import random
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]


def _imports() -> tuple[Any, Any, Any]:
    try:
        import tokenizers
        import torch
        import transformers
    except ImportError:
        raise ImportError("building a tiny model needs torch, transformers and tokenizers: "
                          "pip install 'execrl[hf]'") from None
    return torch, transformers, tokenizers


def synthetic_corpus(lines: int = 300, seed: int = 0) -> list[str]:
    """Small Python functions, varied enough for a tokenizer and a toy model to learn from."""
    rng = random.Random(seed)
    names = ["add", "scale", "clip", "mean", "total", "double", "shift", "square", "pick", "count"]
    args = ["x", "y", "n", "xs", "a", "b", "k"]
    ops = ["+", "-", "*", "//", "%"]
    out = []
    for _ in range(lines):
        a, b = rng.sample(args, 2)
        out.append(
            f"def {rng.choice(names)}_{rng.randint(0, 9)}({a}, {b}):\n"
            f"    return {a} {rng.choice(ops)} {b} {rng.choice(ops)} {rng.randint(1, 99)}\n"
        )
    return out


def build_tokenizer(texts: list[str], vocab_size: int = 400) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with a chat template."""
    _, transformers, tokenizers = _imports()
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    # Newlines are tokens of their own, so a prompt ending in "\n" tokenizes as the same
    # prefix it is inside a whole program (byte-level BPE would otherwise merge "\n" with the
    # next line's indent, and a model would never have seen a prompt's last token).
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.Split("\n", behavior="isolated"),
        tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(tokenizer: Any, hidden: int = 48, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                max_positions: int = 256, seed: int = 0, stop_at_eos: bool = True) -> Any:
    """A freshly initialised tiny ``LlamaForCausalLM`` sized to the tokenizer. Without
    ``stop_at_eos`` generation always runs to its token limit (for timing)."""
    torch, transformers, _ = _imports()
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id if stop_at_eos else None,
    )
    return transformers.LlamaForCausalLM(config)


def pretrain(model: Any, tokenizer: Any, texts: list[str], steps: int = 40, batch_size: int = 8,
             lr: float = 1e-2, seed: int = 0) -> float:
    """A few causal-LM steps on documents of three functions and on chat turns (so the model
    answers after the assistant tag); returns the last loss."""
    torch, _, _ = _imports()
    docs = ["\n".join(texts[i : i + 3]) for i in range(0, len(texts), 3)]
    chats = [
        tokenizer.apply_chat_template([{"role": "user", "content": f"write {t[4:t.index('(')]}"}], tokenize=False,
                                      add_generation_prompt=True) + t
        for t in texts[:40] if t.startswith("def ") and "(" in t
    ]
    return train_lm(model, tokenizer, docs + chats, steps=steps, batch_size=batch_size, lr=lr, seed=seed)[-1]


def train_lm(model: Any, tokenizer: Any, documents: list[str], steps: int, batch_size: int = 8, lr: float = 1e-2,
             seed: int = 0, warmup: int = 0, decay: bool = False, clip: float | None = None,
             progress: bool = False) -> list[float]:
    """Causal-LM training on whole ``documents`` (each ends with EOS), cycling through them in
    a seeded order: AdamW, ``warmup`` steps of linear warm-up, then a constant learning rate or,
    with ``decay``, a linear decay to 5 % of it. Returns the loss of every step."""
    torch, _, _ = _imports()
    ids = [tokenizer.encode(d, add_special_tokens=False) + [tokenizer.eos_token_id] for d in documents]
    random.Random(seed).shuffle(ids)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def factor(step: int) -> float:
        rise = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return rise * (max(0.05, 1.0 - step / steps) if decay else 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="pre-training", unit="step")
    for step in range(steps):
        batch = tokenizer.pad({"input_ids": [ids[(step * batch_size + j) % len(ids)] for j in range(batch_size)]},
                              return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(loss.item()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return losses


def make_tiny_model(out_dir: str, texts: list[str] | None = None, steps: int = 80, seed: int = 0) -> tuple[str, float]:
    """Build, pre-train and save a tiny model and tokenizer into ``out_dir``; returns the
    path and the last pre-training loss."""
    texts = texts or synthetic_corpus(seed=seed)
    tok = build_tokenizer(texts)
    model = build_model(tok, seed=seed)
    loss = pretrain(model, tok, texts, steps=steps, seed=seed)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir, loss
