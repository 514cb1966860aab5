"""The demo's method names exist once (`dupo_verl.demo.methods`); every other module uses that tuple."""

from __future__ import annotations

from dupo_verl.cli import main
from dupo_verl.demo import methods, ppo, results, two_sum_demo


def test_one_definition_of_the_methods():
    assert two_sum_demo.METHODS is methods.METHODS and results.METHODS is methods.METHODS
    assert two_sum_demo.RL_METHODS is methods.RL_METHODS and two_sum_demo.ALL_METHODS is methods.ALL_METHODS
    assert set(ppo.METHOD_AGENTS) == set(methods.RL_METHODS)  # each trained method has its agent loop
    assert set(results._COLORS) == set(methods.METHODS)  # and its colour in the plot
    assert set(methods.ALL_METHODS) <= set(methods.METHODS)


def test_the_cli_names_those_methods(tmp_path, capsys):
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--methods", "dupo,nope"]) == 2
    assert f"choose from {', '.join(methods.METHODS)} or all" in capsys.readouterr().err


def test_every_method_has_its_own_colour_and_none_looks_like_the_warm_start():
    """The frozen ensemble was drawn in grey beside the warm start's grey line (#7f7f7f vs #777777)."""
    rgb = {m: tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for m, c in results._COLORS.items()}
    assert len(set(rgb.values())) == len(rgb)
    warm = rgb["warm_start"]
    for method, colour in rgb.items():
        if method != "warm_start":
            grey = max(colour) - min(colour) < 0x20  # no hue to tell it by
            near = max(abs(a - b) for a, b in zip(colour, warm, strict=True)) <= 0x30
            assert not (grey and near), method
