"""The field registry: MPP's table, our preset, unknown fields, growth (which leaves the model alone)."""
from __future__ import annotations

import pytest

from physviz.errors import ParameterError, UnknownFieldError
from physviz.model.registry import PHYSVIZ_FIELDS, FieldRegistry


def test_mpp_table() -> None:
    reg = FieldRegistry.mpp()
    assert reg.n_slots == 12 and len(reg) == 10
    assert reg.lookup("height", family="swe") == 0
    assert reg.lookup_fields(["velocity_x", "velocity_y", "particles"], family="incompNS") == [1, 2, 3]
    assert reg.lookup_fields(["activator", "inhibitor"]) == [4, 5]
    assert reg.lookup_fields(["velocity_x", "velocity_y", "density", "pressure"], family="compNS") == [6, 7, 8, 9]
    # MPP's own names and family aliases
    assert reg.lookup("Vx", family="compNS") == 6 and reg.lookup("h") == 0
    assert reg.lookup("compNS/Vy") == 7 and reg.lookup(("incompNS", "Vy")) == 2
    assert reg.lookup("velocity_x", family="euler") == 6
    assert reg.lookup("height", family="shallow_water") == 0
    with pytest.raises(UnknownFieldError):  # MPP's SWE data had no velocities
        reg.lookup("velocity_x", family="shallow_water")


def test_ambiguous_names_resolve_by_field_set() -> None:
    reg = FieldRegistry.mpp()
    # alone, a shared name takes the first family in registry order
    assert reg.lookup("velocity_x") == 1
    # a field set prefers the family that holds all of it
    assert reg.lookup_fields(["density", "pressure", "velocity_x", "velocity_y"]) == [8, 9, 6, 7]
    assert reg.lookup_fields(["velocity_x", "velocity_y", "particles"]) == [1, 2, 3]


def test_physviz_preset_covers_the_simulators() -> None:
    reg = FieldRegistry.physviz()
    for name in ("vorticity", "velocity_x", "velocity_y", "velocity_z", "height", "activator", "inhibitor",
                 "A", "B", "density", "pressure", "energy"):
        assert name in reg
        assert reg.lookup(name, family="anything") == reg.lookup(name)
    assert reg.n_slots > len(PHYSVIZ_FIELDS)  # spare slots
    assert len(set(reg.lookup_fields(PHYSVIZ_FIELDS))) == len(PHYSVIZ_FIELDS)


def test_unknown_field_names_the_field_and_the_known_ones() -> None:
    reg = FieldRegistry.mpp()
    with pytest.raises(UnknownFieldError) as info:
        reg.lookup("salinity")
    msg = str(info.value)
    assert "'salinity'" in msg and "compNS/density" in msg and "append=True" in msg
    with pytest.raises(UnknownFieldError, match="'density' in family 'swe'"):
        reg.lookup("density", family="swe")


def test_append_uses_free_slots_then_grows() -> None:
    reg = FieldRegistry.mpp()
    assert reg.lookup("salinity", family="ocean", append=True) == 10
    assert reg.add("temperature", family="ocean") == 11
    assert reg.n_slots == 12
    assert reg.add("tracer", family="ocean") == 12  # past the last slot: the registry grows, nothing else
    assert reg.n_slots == 13
    assert reg.add("tracer", family="ocean") == 12  # idempotent
    assert reg.lookup("ocean/salinity") == 10
    assert not hasattr(reg, "bind")


def test_round_trip_and_bad_entries() -> None:
    reg = FieldRegistry.mpp()
    reg.add("salinity", family="ocean")
    back = FieldRegistry.from_dict(reg.to_dict())
    assert back.to_dict() == reg.to_dict()
    assert back.lookup("Vx", family="euler") == 6
    with pytest.raises(ParameterError, match="already used"):
        FieldRegistry([("a", "x", 0), ("a", "y", 0)])
    with pytest.raises(ParameterError, match="Unknown field registry preset"):
        FieldRegistry.preset("walrus")
