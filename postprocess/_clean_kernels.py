"""The kernel of one class's whole cleaning (private: see ``postprocess.cleaner``).

A run compiles only the cleaning steps its rules take: ``Cleaner`` calls ``clean_kernel``, whose
steps not taken are ``None`` arguments that numba prunes before typing (one specialisation per
combination of steps), and ``clean`` calls one kernel per step. ``clean_kernel`` calls the step
kernels itself rather than through a wrapper kernel, since compiling a kernel re-optimises
everything it calls, once per level of calls.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._component_kernels import filter_kernel, label_kernel, select_kernel
from postprocess._distance_kernels import disk_half_widths, distance_close_kernel, distance_open_kernel
from postprocess._hole_kernels import fill_holes_kernel
from postprocess._morphology_kernels import clip_kernel, close_method, dilate_kernel, erode_kernel, open_method
from postprocess._segment_kernels import head_kernel, join_rows_kernel, split_rows_kernel


@nb.njit(cache=True, nogil=True)
def finish_kernel(runs, rows, x0, x1, width):
    """The cleaning's last step: the cleaned segments as canonical runs, and the areas of
    the mask before (``runs``) and after (the pixels removed and added follow from
    ``|in ∩ out|``, which ``postprocess.cleaner.Cleaner`` counts with ``core``'s kernel)."""
    out = join_rows_kernel(rows, x0, x1, width)
    area_in = 0
    for j in range(runs.shape[0]):
        area_in += runs[j, 1] - runs[j, 0]
    area_out = 0
    for j in range(out.shape[0]):
        area_out += out[j, 1] - out[j, 0]
    return out, area_in, area_out


@nb.njit(cache=True, nogil=True)
def overlap_kernel(a, b):
    """``|A ∩ B|`` of two canonical run arrays (the pixels kept, for the cleaning's counts):
    ``core``'s ``intersection_area_kernel`` again, since a kernel may call only kernels of its
    own file (numba checks a cached kernel against its own file only)."""
    i = 0
    j = 0
    total = np.int64(0)
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if hi > lo:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


@nb.njit(cache=True, nogil=True)
def clean_kernel(runs, bounds, heights, widths, open_r, close_r, conn8, min_size, keep, max_hole):
    """The whole pipeline on each mask ``runs[bounds[k]:bounds[k+1]]`` (one class's rules) on its
    own ``heights[k]`` × ``widths[k]`` grid, in one call: the postprocess command passes a block
    of masks (of one image size or several), ``Cleaner`` one. The numbers are those of the
    largest grid and bounded again by each mask's own, as ``postprocess.cleaner`` bounds them
    (a radius by the longer side, sizes and counts by the pixels), so that a block of mixed
    sizes cleans each mask exactly as a call of its own would. A step whose
    argument is ``None`` is left out before compilation (numba prunes ``is None`` branches on
    the argument's type), so each combination of steps is its own specialisation compiling
    only its steps: ``open_r``/``close_r`` the radii (>= 1, clamped by the caller: see
    ``postprocess.morphology.effective_radius``), ``keep`` (0: all) with ``min_size`` the
    component step, ``max_hole`` (-1: any size) the hole filling. Returns the cleaned runs
    (mask ``k``: ``out[out_bounds[k]:out_bounds[k+1]]``), ``out_bounds`` and per mask
    (components removed, holes filled, area before, area after, area kept)."""
    m = bounds.shape[0] - 1
    stats = np.zeros((m, 5), np.int64)
    out_bounds = np.zeros(m + 1, np.int64)
    out = np.empty((max(runs.shape[0], 16), 2), np.int64)
    n = np.int64(0)
    for k in range(m):
        height = heights[k]
        width = widths[k]
        side = max(height, width, 1)
        npix = max(height * width, 1)
        mask = runs[bounds[k] : bounds[k + 1]]
        rows, x0, x1 = split_rows_kernel(mask, width)
        # Opening, closing and the component step as in open_kernel, close_kernel and
        # select_components_kernel, written out, and the loop over masks here rather than
        # around a one-mask kernel: compiling a kernel re-optimises everything it calls, so
        # each level of calls costs again.
        if open_r is not None:
            r_open = min(open_r, side)
            how = open_method(rows, x0, x1, r_open)
            if how == 0:  # no disk fits: nothing is left
                none = np.int64(0)
                rows, x0, x1 = head_kernel(rows, none), head_kernel(x0, none), head_kernel(x1, none)
            elif how == 1:
                hw = disk_half_widths(r_open)
                rows, x0, x1 = erode_kernel(rows, x0, x1, hw)
                rows, x0, x1 = dilate_kernel(rows, x0, x1, hw)
            else:
                rows, x0, x1 = distance_open_kernel(rows, x0, x1, r_open)
        if close_r is not None:
            r_close = min(close_r, side)
            if close_method(rows, x0, x1, r_close) == 2:
                rows, x0, x1 = distance_close_kernel(rows, x0, x1, r_close)
            else:
                hw = disk_half_widths(r_close)
                rows, x0, x1 = dilate_kernel(rows, x0, x1, hw)
                rows, x0, x1 = erode_kernel(rows, x0, x1, hw)
                rows, x0, x1 = clip_kernel(rows, x0, x1, height, width)
        removed = 0
        if keep is not None:
            labels, areas = label_kernel(rows, x0, x1, conn8)
            kept, removed = select_kernel(areas, min(min_size, npix + 1), min(keep, npix))
            if removed:
                rows, x0, x1 = filter_kernel(rows, x0, x1, labels, kept)
        holes = 0
        if max_hole is not None:
            rows, x0, x1, holes = fill_holes_kernel(
                rows, x0, x1, height, width, conn8, max_hole if max_hole < 0 else min(max_hole, npix)
            )
        cleaned, area_in, area_out = finish_kernel(mask, rows, x0, x1, width)
        if n + cleaned.shape[0] > out.shape[0]:
            bigger = np.empty((2 * (n + cleaned.shape[0]), 2), np.int64)
            for j in range(n):  # a loop: slice assignment's checks cost seconds of compilation
                bigger[j, 0] = out[j, 0]
                bigger[j, 1] = out[j, 1]
            out = bigger
        for j in range(cleaned.shape[0]):
            out[n, 0] = cleaned[j, 0]
            out[n, 1] = cleaned[j, 1]
            n += 1
        out_bounds[k + 1] = n
        stats[k, 0] = removed
        stats[k, 1] = holes
        stats[k, 2] = area_in
        stats[k, 3] = area_out
        stats[k, 4] = overlap_kernel(mask, cleaned)
    return out[:n], out_bounds, stats
