"""Scoring predictions against ground truth and tuning combinations on validation data."""
