"""Every YAML preset in recipes/ names the command that runs it on its first line, and loads
with that recipe's config (no unknown key, no value of the wrong type)."""

import glob
import os
import shlex

import pytest

from execrl.training.config import load_config, preset_command
from execrl.training.recipes import PIPELINES, RECIPES, recipe_module

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESETS = sorted(glob.glob(os.path.join(ROOT, "recipes", "*.yaml")))


def test_there_are_presets():
    assert len(PRESETS) >= 5


@pytest.mark.parametrize("path", PRESETS, ids=os.path.basename)
def test_preset_names_its_command_and_loads(path):
    words = shlex.split(preset_command(path) or "")
    rel = os.path.relpath(path, ROOT)
    assert words[:1] == ["execrl"] and words[-2:] == ["--config", rel], words
    recipe = words[2] if words[1] == "train" else words[1]
    assert words[1] in ("train", "demo")
    cfg = load_config(recipe_module(recipe, RECIPES if words[1] == "train" else PIPELINES).Config, path)
    assert cfg is not None
