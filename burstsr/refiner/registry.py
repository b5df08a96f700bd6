"""The models shipped inside the package, by name (``--model NAME``); no torch here.

fidelity: x4 from a merge on the frames' grid (``burstsr merge``); the default of
    ``burstsr enhance``.
burst: x4 in all from a merge on the x4 grid (``burstsr merge --scale 4``): the network folds
    the fine merge (unshuffle 4) and restores it at its own size; the default of ``burstsr run``.
gan: ``burst`` after an adversarial phase: the same merge, more texture; trained from ``burst``
    (then further from itself, its checkpoint recording ``burst`` as its start), so
    ``--strength`` blends the two's outputs (0 = ``burst`` exactly). Retrain them together.
anyscale: from a merge on the frames' grid, like ``fidelity``, to any output size (``--outscale``,
    ``--width``): a latent field and a coordinate decoder (burstsr.refiner.anyscale); x4 by
    default; ``--sample`` draws its latent.

``fidelity``, ``burst`` and ``gan`` have a small coarse network beside them (``COARSE``) for detail
routing.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHIPPED = {
    "fidelity": WEIGHTS / "fidelity_x4.pt",
    "burst": WEIGHTS / "burst_x4.pt",
    "gan": WEIGHTS / "gan_x4.pt",
    "anyscale": WEIGHTS / "anyscale.pt",
}
# The small coarse networks shipped beside them, for detail routing (burstsr.refiner.route):
# one per kind of input (gan reads what burst reads).
COARSE = {
    "fidelity": WEIGHTS / "fidelity_x4_coarse.pt",
    "burst": WEIGHTS / "burst_x4_coarse.pt",
    "gan": WEIGHTS / "burst_x4_coarse.pt",
}
# The detail score from which a tile goes to the deep model (the 98th percentile of the luma's
# gradient magnitude over the tile, 8-bit levels per frame pixel; burstsr.refiner.route).
DEFAULT_ROUTE_THRESHOLD = 5.0
DEFAULT_MODEL = "fidelity"  # burstsr enhance
DEFAULT_RUN_MODEL = "burst"  # burstsr run
