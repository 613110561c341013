"""Morphological cleaning of masks."""
