"""Design-space symmetries: designs that build congruent structures, found from the builder."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from matdesinne.data.design_space import DesignSpace, Parameter, Property
from matdesinne.materials import LayerBuilder, material
from matdesinne.materials.symmetry import ParameterMap, find_symmetries, with_images

# Janus MoSSe: no mirror through the metal plane, so no flip.
JANUS = LayerBuilder(("Mo", "S", "Se"), ((1 / 3, 2 / 3, 0.5), (2 / 3, 1 / 3, 0.63), (2 / 3, 1 / 3, 0.37)),
                     (3.2, 3.2, 12.3, 90.0, 90.0, 120.0))
# hBN: flat, so a mirror through its plane reverses the field and every map keeps either sign.
HBN = LayerBuilder(("B", "N"), ((1 / 3, 2 / 3, 0.5), (2 / 3, 1 / 3, 0.5)), (2.5, 2.5, 12.0, 90.0, 90.0, 120.0))
CANDIDATES = [ParameterMap("", swap, flip, sign) for swap, flip in ((False, False), (True, False), (False, True), (True, True))
              for sign in (1, -1)]


def _slab(builder, design):
    """The structure as the DFT sees it: c along z, Cartesian positions kept."""
    atoms = builder(design)
    cell = atoms.cell.array.copy()
    cell[2] = [0.0, 0.0, cell[2, 2]]
    atoms.set_cell(cell, scale_atoms=False)
    atoms.pbc = (True, True, False)
    return atoms


def _congruent(builder, names, x, y) -> bool:
    """Whether the two designs make the same crystal in the same field: equal multisets of
    (species, species, distance, field x height difference) over every neighbour pair within
    6 Å, in-plane images included. An isometry keeps distances, and maps the field with the
    height axis, so it keeps each pair's potential difference."""
    def pairs(values):
        atoms = _slab(builder, dict(zip(names, values)))
        i, j, d, vec = neighbor_list("ijdD", atoms, 6.0)
        sym = atoms.get_chemical_symbols()
        return sorted((sym[a], sym[b], round(float(r), 5), round(float(values[-1] * v[2]), 5))
                      for a, b, r, v in zip(i, j, d, vec))

    return pairs(x) == pairs(y)


def _designs(space, n=4, seed=0):
    return np.random.default_rng(seed).uniform(space.lows, space.highs, (n, space.dim))


def test_ws2_has_swap_and_flip_with_the_field_reversed_and_their_composition():
    found = material("ws2").symmetries()
    assert [(m.swap, m.flip, m.field_sign) for m in found] == [(True, False, -1), (False, True, -1), (True, True, 1)]
    assert [m.name for m in found] == ["swap (field reversed)", "flip (field reversed)", "swap+flip"]


@pytest.mark.parametrize("builder", [
    material("ws2").builder,
    JANUS,
    HBN,
], ids=["ws2", "janus", "hbn"])
def test_found_maps_are_exactly_those_that_build_congruent_structures(builder):
    params = tuple(Parameter(k, 0.8 * v, 1.2 * v, "", v) for k, v in zip(("a", "b", "c", "alpha", "beta"),
                                                                          builder.cellpar))
    space = DesignSpace("t", (*params, Parameter("gamma", 100.0, 140.0, "deg", 120.0),
                              Parameter("efield", -1.0, 1.0, "V/Å", 0.0)), Property("band_gap", "eV", lower=0.0))
    found = {(m.swap, m.flip, m.field_sign) for m in find_symmetries(builder, space)}
    x = _designs(space)
    for m in CANDIDATES[1:]:  # all but the identity
        images = m.apply(x, space.names)
        congruent = all(_congruent(builder, space.names, a, b) for a, b in zip(x, images))
        assert congruent == ((m.swap, m.flip, m.field_sign) in found), m
    assert found, "every one of these layers has a symmetry"


def test_janus_layer_keeps_only_swap_with_flip_and_a_flat_layer_keeps_every_map():
    space = material("ws2").space()
    assert [(m.swap, m.flip, m.field_sign) for m in find_symmetries(JANUS, space)] == [(True, True, 1)]
    assert [(m.swap, m.flip, m.field_sign) for m in find_symmetries(HBN, space)] == [
        (False, False, -1), (True, False, 1), (True, False, -1), (False, True, 1), (False, True, -1),
        (True, True, 1), (True, True, -1)]
    no_field = DesignSpace("t", tuple(p for p in space.parameters if p.name != "efield"), space.property)
    assert [(m.swap, m.flip, m.field_sign) for m in find_symmetries(HBN, no_field)] == [
        (True, False, 1), (False, True, 1), (True, True, 1)]


def test_a_box_the_map_does_not_keep_gives_no_map():
    ws2 = material("ws2")
    params = list(ws2.parameters)
    params[0] = Parameter("a", params[0].low, params[0].high * 1.01, "Å", params[0].equilibrium)  # a wider than b
    space = DesignSpace("t", tuple(params), ws2.properties[0])
    assert [(m.swap, m.flip) for m in find_symmetries(ws2.builder, space)] == [(False, True)]
    fixed_b = DesignSpace("t", tuple(p for p in ws2.parameters if p.name != "b"), ws2.properties[0])
    assert all(not m.swap for m in find_symmetries(ws2.builder, fixed_b))  # b fixed at its value: a cannot swap


def test_with_images_repeats_the_properties_and_stays_in_the_box():
    space = material("ws2").space()
    x = np.vstack([space.lows, space.highs, _designs(space, 3)])
    y = np.arange(len(x) * 2, dtype=float).reshape(-1, 2)
    maps = material("ws2").symmetries()
    xa, ya = with_images(x, y, maps, space)
    assert xa.shape == (4 * len(x), space.dim) and np.array_equal(ya, np.concatenate([y] * 4))
    assert np.all(xa >= space.lows) and np.all(xa <= space.highs)
    assert np.array_equal(xa[: len(x)], x)
    assert with_images(x, y, (), space) == (x, y)


def test_train_learns_the_images_and_a_refit_keeps_to_them(tmp_path):
    from matdesinne.loop.refit import base_rows, symmetries_of
    from matdesinne.models import EnsembleSurrogate
    from matdesinne.models.train import train_models

    on = train_models("ws2", y="band_gap,strain_energy", kinds=["surrogate"], out=tmp_path / "on", epochs=1)
    off = train_models("ws2", y="band_gap,strain_energy", kinds=["surrogate"], out=tmp_path / "off", epochs=1,
                       symmetry=False)
    assert on["surrogate"]["symmetry_images"] == [m.name for m in material("ws2").symmetries()]
    assert "symmetry_images" not in off["surrogate"]
    n_train = on["surrogate"]["split"]["n_train"]
    with_maps = EnsembleSurrogate.load(tmp_path / "on")
    without = EnsembleSurrogate.load(tmp_path / "off")
    assert len(symmetries_of(with_maps)) == 3 and symmetries_of(without) == ()
    x_on, y_on, _ = base_rows(with_maps)
    x_off, y_off, _ = base_rows(without)
    assert x_on.shape == (4 * n_train, 7) and x_off.shape == (n_train, 7)
    assert np.array_equal(x_on[:n_train], x_off) and np.array_equal(y_on, np.concatenate([y_off] * 4))


@pytest.mark.parametrize("symmetry", [True, False])
def test_a_refit_learns_told_rows_at_their_images_only_with_symmetry(tmp_path, symmetry):
    from matdesinne.loop.refit import base_rows, refit_surrogate
    from matdesinne.models import EnsembleSurrogate
    from matdesinne.models.train import train_models

    train_models("ws2", y="band_gap,strain_energy", kinds=["surrogate"], out=tmp_path, epochs=1, symmetry=symmetry)
    prior = EnsembleSurrogate.load(tmp_path)
    space = prior.space_
    x = _designs(space, 6)
    told = prior.predict(x)[0] + 0.5  # DFT disagrees with the prior by 0.5 eV
    tuned = refit_surrogate(prior, x, told, base_rows(prior)[:2], seed=0)
    assert np.abs(tuned.predict(x)[0] - told).mean() < 0.05
    at_images = [np.abs(tuned.predict(m.apply(x, space.names))[0] - told).mean() for m in material("ws2").symmetries()]
    if symmetry:  # the images share the told values, and the refit learnt them
        assert max(at_images) < 0.05
    else:  # without, nothing ties them to the told rows
        assert max(at_images) > 0.3
