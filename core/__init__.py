"""Low-level shared package: RLE codec, run algebra, prediction CSV I/O, synthetic data."""
