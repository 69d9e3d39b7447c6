"""Data: design spaces and the datasets that map design parameters to a property."""

from matdesinne.data.datasets import Dataset, load_dataset, split_indices
from matdesinne.data.design_space import DesignSpace, Parameter, Property, parse_constraint

__all__ = ["Dataset", "DesignSpace", "Parameter", "Property", "load_dataset", "parse_constraint", "split_indices"]
