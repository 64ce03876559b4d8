"""Fields the model does not know by name: suggestions of the registry names they resemble, and field_map in rollouts."""
from __future__ import annotations

import numpy as np
import pytest

import physviz
from physviz.errors import ParameterError, UnknownFieldError
from physviz.fields.simulate import simulate
from physviz.model.registry import FieldRegistry
from physviz.widgets.rollout_runner import RolloutRunner


@pytest.fixture(scope="module")
def gray_scott():
    return simulate("gray_scott", 1, resolution=32, steps=8, seed=1, progress=False)


@pytest.fixture(scope="module")
def model():
    return physviz.load_pretrained()


@pytest.mark.parametrize(("name", "first"), [
    ("concentration_A", "A"), ("Concentration_B", "B"), ("rho_gas", "density"), ("vorticity_z", "vorticity"),
    ("densty", "density"), ("velocityx", "velocity_x"), ("u_mean", "velocity_x"),
])
def test_suggestions_name_the_field_first(name, first):
    reg = FieldRegistry.physviz()
    assert reg.suggest(name)[0] == first
    with pytest.raises(UnknownFieldError, match=rf"probably '{first}'"):
        reg.lookup(name)


def test_no_suggestion_for_a_name_like_nothing():
    reg = FieldRegistry.physviz()
    assert reg.suggest("glorpiness") == []
    with pytest.raises(UnknownFieldError) as info:
        reg.lookup("glorpiness")
    assert "probably" not in str(info.value)


def test_rollout_suggests_a_field_map_and_then_takes_it(model, gray_scott):
    renamed = gray_scott.rename({"A": "concentration_A", "B": "concentration_B"})
    # a model without a generic slot refuses names it does not know, and says which map would do
    with pytest.raises(UnknownFieldError,
                       match=r"field_map=\{'concentration_A': 'A', 'concentration_B': 'B'\}"):
        physviz.rollout(physviz.load_pretrained("gen1"), renamed, 2)
    # the bundled model reads both through its one generic slot, zero-shot, and says the same
    with pytest.warns(UserWarning, match=r"shared by all of them.*field_map=\{'concentration_A': 'A', "
                                         r"'concentration_B': 'B'\}"):
        zero_shot = physviz.rollout(model, renamed, 2)
    assert np.isfinite(zero_shot["concentration_A"].values).all()
    plain = physviz.rollout(model, gray_scott, 2)
    mapped = physviz.rollout(model, renamed, 2, field_map={"concentration_A": "A", "concentration_B": "B"})
    assert list(mapped.data_vars) == ["concentration_A", "concentration_B"]  # the Dataset's names are kept
    np.testing.assert_array_equal(mapped["concentration_A"].values, plain["A"].values)
    np.testing.assert_array_equal(mapped["concentration_B"].values, plain["B"].values)
    assert mapped.attrs["rollout"]["field_map"] == {"concentration_A": "A", "concentration_B": "B"}
    assert list(renamed.data_vars)[:2] == ["concentration_A", "concentration_B"]  # the input is untouched


@pytest.mark.parametrize(("field_map", "error", "words"), [
    ({"conc_A": "A"}, UnknownFieldError, "conc_A"),
    ({"concentration_A": 3}, ParameterError, "str -> str"),
    (["concentration_A", "A"], ParameterError, "field_map"),
    ({"concentration_A": "glorp", "concentration_B": "B"}, UnknownFieldError, "glorp"),
])
def test_bad_field_maps_are_refused(model, gray_scott, field_map, error, words):
    renamed = gray_scott.rename({"A": "concentration_A", "B": "concentration_B"})
    with pytest.raises(error, match=words):
        physviz.rollout(model, renamed, 2, field_map=field_map)


def test_the_scrubbers_runner_takes_a_field_map(model, gray_scott):
    renamed = gray_scott.rename({"A": "concentration_A", "B": "concentration_B"})
    runner = RolloutRunner(model, renamed, steps=2, fields=["concentration_A", "concentration_B"],
                           field_map={"concentration_A": "A", "concentration_B": "B"})
    runner.start()
    assert runner.wait(timeout=120)
    assert runner.error is None and runner.ready == runner.steps
    expected = physviz.rollout(model, gray_scott, runner.steps, start=runner.plan.start)
    np.testing.assert_allclose(runner.prediction["concentration_A"].values, expected["A"].values[0], rtol=1e-5, atol=1e-6)
