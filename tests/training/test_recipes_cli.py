import dataclasses
import importlib.util

import pytest

from execrl.training.recipes import RECIPES, recipe_module
from tests.training._cli import assert_config_error, train

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_help_lists_every_field_with_its_doc(recipe):
    p = train(recipe, "--help")
    assert p.returncode == 0, p.stderr
    assert f"execrl train {recipe}" in p.stdout
    for f in dataclasses.fields(recipe_module(recipe).Config):
        assert f"  {f.name}:" in p.stdout and f.metadata["help"] in p.stdout, f.name


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
@pytest.mark.parametrize("recipe, override", [("sft", "generator=vllm"), ("grpo", "use_vllm=true"),
                                              ("raft", "generator=vllm")])
def test_vllm_without_vllm_is_one_line_before_any_work(tmp_path, recipe, override):
    assert_config_error(recipe, [override], [override.split("=")[0], "needs vllm", "pip install"], tmp_path)


@pytest.mark.parametrize("recipe", ["sft", "dpo"])
def test_unknown_generator_is_one_line(tmp_path, recipe):
    assert_config_error(recipe, ["generator=tgi"], ["generator='tgi'", "hf, vllm"], tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
@pytest.mark.parametrize("recipe", ["sft", "ppo", "critic"])
def test_report_to_a_missing_logger_is_one_line_before_any_work(tmp_path, recipe):
    assert_config_error(recipe, ["report_to=wandb"], ["report_to=wandb needs wandb", "pip install wandb"], tmp_path)
