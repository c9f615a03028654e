import pytest

for _mod in ("torch", "transformers", "tokenizers"):
    pytest.importorskip(_mod)

from execrl.training import tiny  # noqa: E402 - after the skips


def test_tiny_model_is_built_locally_and_loads_through_from_pretrained(tmp_path):
    import transformers

    texts = tiny.synthetic_corpus(lines=120, seed=1)
    tok = tiny.build_tokenizer(texts)
    untrained = tiny.build_model(tok, seed=1)
    before = tiny.pretrain(untrained, tok, texts, steps=1, seed=1)
    path, after = tiny.make_tiny_model(str(tmp_path / "m"), texts=texts, steps=30, seed=1)
    assert after < before  # the few pre-training steps do learn something
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    loaded = transformers.AutoTokenizer.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert loaded.chat_template == tiny.CHAT_TEMPLATE and loaded.pad_token == "<pad>"
    assert loaded.decode(loaded.encode(texts[0], add_special_tokens=False)) == texts[0]
