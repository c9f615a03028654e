import dataclasses

import pytest

from execrl.training.recipes import RECIPES, recipe_module
from tests.training._cli import train

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_help_lists_every_field_with_its_doc(recipe):
    p = train(recipe, "--help")
    assert p.returncode == 0, p.stderr
    assert f"execrl train {recipe}" in p.stdout
    for f in dataclasses.fields(recipe_module(recipe).Config):
        assert f"  {f.name}:" in p.stdout and f.metadata["help"] in p.stdout, f.name
