"""Data: design spaces and the datasets that map design parameters to a property."""

from matdesinne.data.datasets import Dataset, check_finite, check_seed, dataset_from, read_dataset, split_indices
from matdesinne.data.splits import Split, design_key
from matdesinne.data.design_space import DesignSpace, Parameter, Property, parse_constraint, reserved_columns

__all__ = [
    "Dataset", "DesignSpace", "Parameter", "Property", "check_finite", "check_seed", "dataset_from", "parse_constraint",
    "read_dataset", "reserved_columns", "Split", "design_key", "split_indices",
]
