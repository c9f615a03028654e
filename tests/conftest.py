import random

import pytest

from execrl.sandbox import SandboxPool


@pytest.fixture(scope="session")
def pool():
    """One isolated pool for the whole session (starting one costs ~0.1 s per worker)."""
    with SandboxPool(workers=2) as p:
        yield p


@pytest.fixture(scope="session")
def inline_pool():
    with SandboxPool(workers=2, mode="inline") as p:
        yield p


# A tiny Llama built from scratch on local files: a BPE tokenizer and a few training steps.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus(lines: int = 300, seed: int = 0) -> list[str]:
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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Path of a saved tiny LlamaForCausalLM + PreTrainedTokenizerFast (with a chat template)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    texts = corpus()
    special = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        additional_special_tokens=special[3:],
    )
    tok.chat_template = CHAT_TEMPLATE

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    model = transformers.LlamaForCausalLM(config)
    # Documents of a few functions, and some chat turns, so greedy outputs run for a while.
    docs = ["\n".join(texts[i : i + 3]) for i in range(0, len(texts), 3)]
    chats = [
        tok.apply_chat_template([{"role": "user", "content": f"write {t[4:t.index('(')]}"}], tokenize=False,
                                add_generation_prompt=True) + t
        for t in texts[:40]
    ]
    ids = [tok.encode(d, add_special_tokens=False) + [tok.eos_token_id] for d in docs + chats]
    random.Random(0).shuffle(ids)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(40):
        batch = tok.pad({"input_ids": [ids[(step * 8 + j) % len(ids)] for j in range(8)]}, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), loss.item()
