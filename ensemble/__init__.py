"""Combining predictions: voting on runs (hard, weighted, union/intersection)."""
