"""Low-level shared package: RLE codec, run algebra, prediction CSV I/O, synthetic data."""

from core.jit import drop_stale_caches

drop_stale_caches()
