import dataclasses

import pytest

from execrl.generation import BACKENDS, FakeGenerator, Generator, SamplingParams, make_backend, truncate_at_stop


def test_sampling_params_defaults_are_greedy():
    p = SamplingParams()
    assert (p.n, p.temperature, p.top_p, p.stop, p.seed, p.greedy) == (1, 0.0, 1.0, [], None, True)
    assert not SamplingParams(temperature=0.2).greedy


def test_every_sampling_field_has_a_one_line_help():
    for f in dataclasses.fields(SamplingParams):
        assert f.metadata["help"] and "\n" not in f.metadata["help"], f.name


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n": 0}, "n must be an integer >= 1"),
        ({"n": 1.5}, "n must be an integer >= 1"),
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"temperature": float("nan")}, "temperature must be >= 0"),
        ({"top_p": 0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.01}, r"top_p must be in \(0, 1\]"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"stop": "\n"}, "stop must be a list of non-empty strings"),
        ({"stop": [""]}, "stop must be a list of non-empty strings"),
    ],
)
def test_sampling_params_validation(kw, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams(**kw)


def test_truncate_at_stop_cuts_before_the_earliest_stop():
    assert truncate_at_stop("a\nb\ndef c", ["\ndef", "\nb"]) == "a"
    assert truncate_at_stop("abc", ["x"]) == "abc"
    assert truncate_at_stop("abc", []) == "abc"
    assert truncate_at_stop("stop", ["stop"]) == ""


def test_fake_generator_follows_the_protocol():
    gen = FakeGenerator()
    assert isinstance(gen, Generator)
    assert gen.generate(["p", "q"], SamplingParams(n=2, stop=["\n"])) == [["    return 0", "    return 1"]] * 2
    assert gen.calls[0][0] == ["p", "q"]


def test_make_backend_unknown_scheme_names_the_known_ones():
    for spec in ("tgi:http://x", "hf", "nonsense", "hf:"):
        with pytest.raises(ValueError, match="hf:\\.\\.\\., openai:\\.\\.\\., vllm:\\.\\.\\.") as err:
            make_backend(spec)
        assert repr(spec) in str(err.value)
    assert set(BACKENDS) == {"hf", "openai", "vllm"}


def test_importing_the_package_pulls_no_heavy_dependency():
    import subprocess
    import sys

    code = (
        "import sys, execrl.generation, execrl.generation.hf, execrl.generation.openai_compat, "
        "execrl.generation.vllm_backend\n"
        "heavy = [m for m in ('torch', 'transformers', 'httpx', 'vllm') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
