"""The band-edge search: edges between mesh points, found against a dense reference."""

import json

import numpy as np
import pytest

from matdesinne.validation.dft import PRESETS, DFTSettings, resolve_settings
from matdesinne.validation.edges import mesh_edges, mesh_points, search_edges, same_k, valleys
from matdesinne.validation.result import DFTResult, Status


def hexagonal_bands(shift=(0.0, 0.0), strain=0.0, offset=1.2):
    """A gapped (massive Dirac) tight-binding pair of bands on a strained hexagonal lattice,
    like MoS2's: the valence maximum and conduction minimum sit at K, moved off the mesh by
    ``shift`` and a strain of the hoppings, with a second valence valley at Γ. Not
    quadratic away from K: the search must cope with that."""
    k0 = np.asarray([*shift, 0.0])
    hops = np.array([1.0 + strain, 1.0 - strain, 1.0])

    def bands(k):
        q = 2 * np.pi * (np.asarray(k, float) - k0)
        f = np.sqrt(0.3 ** 2 + np.abs(hops[0] + hops[1] * np.exp(1j * q[:, 0]) + hops[2] * np.exp(1j * q[:, 1])) ** 2)
        gamma = -0.15 + 0.3 * (np.cos(2 * np.pi * k[:, 0]) + np.cos(2 * np.pi * k[:, 1]) - 2)
        return np.maximum(-0.5 * f, gamma - 0.25), offset + 0.8 * f

    return bands


def dense_truth(bands, n=300):
    """The true VBM and CBM: the best points of a dense mesh, polished by a local optimiser."""
    from scipy.optimize import minimize

    k = mesh_points(n)
    v, c = bands(k)

    def polished(f, start):
        return minimize(lambda q: f(np.array([[*q, 0.0]]))[0], start, method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000}).fun

    vbm = max(v.max(), -polished(lambda q: -bands(q)[0], k[np.argmax(v), :2]))
    cbm = min(c.min(), polished(lambda q: bands(q)[1], k[np.argmin(c), :2]))
    return vbm, cbm


@pytest.mark.parametrize("shift,strain", [((0.0, 0.0), 0.0), ((0.013, -0.021), 0.04), ((0.031, 0.017), -0.06)])
@pytest.mark.parametrize("n", [6, 9])
def test_the_search_finds_edges_between_mesh_points(shift, strain, n):
    bands = hexagonal_bands(shift, strain)
    vbm, cbm = dense_truth(bands)
    mesh = mesh_points(n)
    on_mesh = mesh_edges(mesh, *bands(mesh))
    found = search_edges(bands, n, *bands(mesh))
    # Only computed eigenvalues are reported: never a gap below the truth, never above the mesh's.
    assert found.vbm <= vbm + 1e-12 and found.cbm >= cbm - 1e-12
    assert found.gap <= on_mesh.gap + 1e-12
    assert found.gap - (cbm - vbm) <= 2e-3, (found.gap, cbm - vbm, on_mesh.gap)
    v_at, c_at = bands(np.array([found.vbm_k, found.cbm_k]))
    assert v_at[0] == pytest.approx(found.vbm, abs=1e-6) and c_at[1] == pytest.approx(found.cbm, abs=1e-6)  # honest k
    assert found.direct  # both edges at K (or at K and K', the same by time reversal)
    assert found.kpoints < 2 * n * n + 60


def test_an_indirect_gap_and_a_metal():
    k_v, k_c = np.array([0.21, 0.37, 0]), np.array([0.64, 0.05, 0])

    def bands(k, offset):
        dv, dc = k - k_v - np.round(k - k_v), k - k_c - np.round(k - k_c)
        return -4 * np.sum(dv ** 2, 1), offset + 6 * np.sum(dc ** 2, 1)

    for offset in (0.8, -0.3):  # a gap, and overlapping bands: a metal keeps its negative raw gap
        found = search_edges(lambda k: bands(k, offset), 9, *bands(mesh_points(9), offset))
        assert found.gap == pytest.approx(offset, abs=1e-6) and not found.direct
        assert same_k(found.vbm_k, k_v) and same_k(found.cbm_k, k_c)


def test_valleys_within_the_window_and_one_of_each_time_reversed_pair():
    bands = hexagonal_bands()
    mesh = mesh_points(9)
    valence, _ = bands(mesh)
    # K and K' are one valley by time reversal; Γ lies 0.1 eV lower, inside a 0.3 eV window only.
    wide, narrow = valleys(valence, 9, (True, True, False), +1, 0.3), valleys(valence, 9, (True, True, False), +1, 0.1)
    assert len(narrow) == 1 and len(wide) == 2 and same_k(mesh[wide[1]], (0, 0, 0))


def test_settings_and_edges_round_trip_as_plain_data():
    accurate = PRESETS["accurate"]
    assert resolve_settings("accurate").edges == "search"
    assert DFTSettings.from_dict(json.loads(json.dumps(accurate.to_dict()))) == accurate
    assert "edges" not in PRESETS["standard"].to_dict()  # stores made before the search keep their identity
    result = DFTResult(Status.OK, 1.5, vbm_k=(1 / 3, 1 / 3, 0.0), cbm_k=(2 / 3, 2 / 3, 0.0))
    again = DFTResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.direct is True and DFTResult(Status.OK, 1.0).direct is None
    from matdesinne.errors import UserInputError

    with pytest.raises(UserInputError, match="edges must be one of"):
        DFTSettings.from_dict({"edges": "guess"})


def test_a_real_cell_whose_edges_sit_off_the_mesh(tmp_path):
    """GPAW at tiny settings on a sheared MoS2 cell: the search from a 5x5 mesh, which misses
    K = (1/3, 1/3), against a dense 12x12 non-self-consistent reference on the same density."""
    pytest.importorskip("gpaw")
    from threadpoolctl import threadpool_limits

    from gpaw import GPAW

    from matdesinne.materials import material
    from matdesinne.validation.dft import compute_gap, mesh_bands, nscf_bands, occupied_bands, prepare

    atoms = material("mos2").builder({"a": 3.27, "b": 3.08, "c": 12.3, "alpha": 90.0, "beta": 90.0, "gamma": 117.0,
                                      "efield": 0.1})
    tiny = DFTSettings("tiny-search", cutoff=200.0, kpoints=5, edges="search")
    with threadpool_limits(1):
        found = compute_gap(atoms, tiny)
        mesh = compute_gap(atoms, DFTSettings("tiny", cutoff=200.0, kpoints=5))
        cell, kwargs = prepare(atoms, tiny)
        cell.calc = GPAW(**kwargs)
        cell.get_potential_energy()
        occupied = occupied_bands(cell.calc)
        k, v, c = mesh_bands(cell.calc, occupied, 5, cell.pbc)
        dense = mesh_points(12)
        dv, dc = nscf_bands(cell.calc, occupied, dense)
    assert found.status is Status.OK and mesh.status is Status.OK
    reference = float(dc.min() - dv.max())
    assert mesh.gap_raw - reference > 0.02  # the 5x5 mesh misses the edges by more than the search may
    assert found.gap_raw <= mesh.gap_raw + 1e-9
    assert reference - 0.03 <= found.gap_raw <= reference + 0.005, (found.gap_raw, reference, mesh.gap_raw)
    assert found.vbm_k is not None and found.cbm_k is not None and found.direct is not None
    # The SCF mesh's own bands, unfolded, give GPAW's HOMO-LUMO gap.
    assert float(c.min() - v.max()) == pytest.approx(mesh.gap_raw, abs=1e-6)


@pytest.mark.parametrize("n", [5, 6, 48])
def test_a_reference_mesh_computes_half_its_points_by_time_reversal(n):
    from matdesinne.validation.dft import time_reversal_half

    k = mesh_points(n)
    half, unfold = time_reversal_half(k, n)
    assert len(half) == (n * n + (1 if n % 2 else 4)) // 2  # pairs k, -k, and the points that are their own partner

    def even(q):  # any lattice-periodic function with f(k) = f(-k), as bands are by time reversal
        g = np.cos(2 * np.pi * (q[:, 0] + 2 * q[:, 1]) + 0.1) + np.sin(2 * np.pi * q[:, 1] + 0.3)
        return g + np.cos(2 * np.pi * (q[:, 0] + 2 * q[:, 1]) - 0.1) + np.sin(-2 * np.pi * q[:, 1] + 0.3)

    np.testing.assert_allclose(even(k[half])[unfold], even(k), atol=1e-12)
