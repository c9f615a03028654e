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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Path of a saved tiny LlamaForCausalLM + PreTrainedTokenizerFast (with a chat template),
    built from local text only (execrl.training.tiny), and its last pre-training loss."""
    for mod in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(mod)
    from execrl.training.tiny import make_tiny_model

    return make_tiny_model(str(tmp_path_factory.mktemp("tiny-llama")))
