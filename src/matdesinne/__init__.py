"""matdesinne: inverse materials design with invertible neural networks.

Give it a target property; it proposes many diverse design candidates that have it:
generate posterior samples with a conditional INN, down-select them with a forward
surrogate, and localize each onto the target by gradient steps on that surrogate.
"""

__version__ = "0.1.0"
