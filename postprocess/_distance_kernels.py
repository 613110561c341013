"""Opening and closing by a disk through exact squared Euclidean distances (private: see
``postprocess.morphology``; ``postprocess._morphology_kernels`` chooses between these kernels and
the row-by-row ones).

A pixel is within the disk of radius r of a set S when some ``(y', x')`` of S has
``(y - y')² + (x - x')² <= r²``. Separably (the first pass of Meijster's distance transform):
``d(y, x')``, the vertical distance from row y to S in column x', is computed for every column
by two sweeps; then row y's pixels within r of S are the union over columns x' of the intervals
``[x' - hw[d], x' + hw[d]]`` (``hw[d]`` = the largest h with h² + d² <= r², exact integers),
found by two sweeps of reach (``_cover``) rather than a lower envelope of parabolas. Dilation
is that union; erosion is the complement of the union around the background. Every pass is
linear in the pixels of the window it runs on, whatever the radius:

- opening (``distance_open_kernel``): erosion on the mask's bounding box, the outside of the
  box being background (so is the outside of the image), then dilation of the eroded set,
  kept to the box (an opening lies inside the mask);
- closing (``distance_close_kernel``): the dilation D is needed only on the box's rows, over
  the columns within r of the box; above and below the box it is one run per column, from
  the row the mask's top (bottom) pixels give (``_run_ends``). The pixels off D (centres of
  the disks that miss the mask) are dilated back and removed, on the box alone (a closing
  lies inside the mask's bounding box). Cost: height × (width + 2r) of the box, so callers
  bound r (``postprocess.morphology.effective_radius``).

Compile time is kept down as in ``_segment_kernels``: one signature per kernel (int64 arrays
and scalars; the grids inside are flat int32 arrays, never seen outside this file), loops
rather than slicing or numpy's costlier functions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._segment_kernels import head_kernel


@nb.njit(cache=True, nogil=True)
def disk_half_widths(r):
    """``hw[d]`` = the largest h with h² + d² <= r², for d in 0 … r (one pass: h only falls)."""
    hw = np.empty(r + 1, np.int64)
    h = r
    for d in range(r + 1):
        while h * h + d * d > r * r:
            h -= 1
        hw[d] = h
    return hw


@nb.njit(cache=True, nogil=True)
def box_kernel(rows, x0, x1):
    """The segments' bounding box ``(y0, y1, xa, xb)``, half-open (segments sorted by row)."""
    xa = x0[0]
    xb = x1[0]
    for k in range(rows.shape[0]):
        xa = min(xa, x0[k])
        xb = max(xb, x1[k])
    return rows[0], rows[rows.shape[0] - 1] + 1, xa, xb


@nb.njit(cache=True, nogil=True)
def _filled(n, value):
    """An int64 array of ``n`` times ``value``."""
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = value
    return out


@nb.njit(cache=True, nogil=True)
def _grid(n, value):
    """A flat int32 grid of ``n`` cells holding ``value`` (cell ``(y, x)`` of a grid ``w`` wide
    is ``y * w + x``)."""
    g = np.empty(n, np.int32)
    for i in range(n):
        g[i] = value
    return g


@nb.njit(cache=True, nogil=True)
def _paint(grid, w, rows, x0, x1, y0, xa, value):
    """``value`` in every cell of the segments, on a grid ``w`` wide whose cell (0, 0) is
    pixel ``(y0, xa)``."""
    for k in range(rows.shape[0]):
        base = (rows[k] - y0) * w - xa
        for x in range(x0[k], x1[k]):
            grid[base + x] = value


@nb.njit(cache=True, nogil=True)
def _column_distances(grid, h, w, above, below, cap):
    """In place, on a grid ``h`` × ``w``: each non-zero cell becomes the vertical distance to the
    nearest zero cell of its column, at most ``cap``. ``above[x]`` (< 0) and ``below[x]`` (>= h)
    are the rows, relative to the grid, of the nearest zero cells outside it. Row by row (two
    sweeps keeping one row per column), so the grid is read in memory order."""
    last = np.empty(w, np.int64)
    for x in range(w):
        last[x] = above[x]
    for y in range(h):
        base = y * w
        for x in range(w):
            if grid[base + x] == 0:
                last[x] = y
            else:
                grid[base + x] = min(y - last[x], cap)
    for x in range(w):
        last[x] = below[x]
    for y in range(h - 1, -1, -1):
        base = y * w
        for x in range(w):
            v = grid[base + x]
            if v == 0:
                last[x] = y
            elif last[x] - y < v:
                grid[base + x] = last[x] - y


@nb.njit(cache=True, nogil=True)
def _reaches(r):
    """``disk_half_widths(r)`` and one entry more, ``[r + 1]``, so far below any column that a
    source at distance r + 1 (the cap: out of reach) reaches nothing, with no test."""
    hw = disk_half_widths(r)
    out = np.empty(r + 2, np.int64)
    for d in range(r + 1):
        out[d] = hw[d]
    out[r + 1] = -(1 << 62)
    return out


@nb.njit(cache=True, nogil=True)
def _cover(dist, base, w, reach_of, out):
    """``out[x]`` = 1 when column x lies within ``reach_of[d]`` of a column j whose distance is
    ``d = dist[base + j]``, else 0 (x, j < w): a row's pixels within r of the set whose vertical
    distances ``dist`` holds (capped at r + 1, see ``_reaches``). Two sweeps of the farthest
    reach: an interval holding x has its centre left of x or right of it."""
    reach = np.int64(-1)
    for x in range(w):
        reach = max(reach, x + reach_of[dist[base + x]])
        out[x] = 1 if reach >= x else 0
    reach = w
    for x in range(w - 1, -1, -1):
        reach = min(reach, x - reach_of[dist[base + x]])
        if reach <= x:
            out[x] = 1


@nb.njit(cache=True, nogil=True)
def _segments(grid, h, w, y0, xa, want):
    """The runs of cells holding ``want`` in a grid ``h`` × ``w`` whose cell (0, 0) is pixel
    ``(y0, xa)``, as row segments (counted, then written: no buffer grows)."""
    n = np.int64(0)
    for y in range(h):
        base = y * w
        for x in range(w):
            if grid[base + x] == want and (x == 0 or grid[base + x - 1] != want):
                n += 1
    rows = np.empty(n, np.int64)
    x0 = np.empty(n, np.int64)
    x1 = np.empty(n, np.int64)
    k = 0
    for y in range(h):
        base = y * w
        for x in range(w):
            if grid[base + x] == want:
                if x == 0 or grid[base + x - 1] != want:
                    rows[k] = y0 + y
                    x0[k] = xa + x
                    k += 1
                x1[k - 1] = xa + x + 1
    return rows, x0, x1


@nb.njit(cache=True, nogil=True)
def _nothing(rows):
    """No segments (three empty int64 arrays)."""
    return head_kernel(rows, np.int64(0)), head_kernel(rows, np.int64(0)), head_kernel(rows, np.int64(0))


@nb.njit(cache=True, nogil=True)
def distance_open_kernel(rows, x0, x1, r):
    """Opening (erosion, then dilation) by the disk of radius ``r`` >= 1; outside the segments
    (the image's outside included) is background. Row segments in, row segments out."""
    if rows.shape[0] == 0:
        return _nothing(rows)
    y0, y1, xa, xb = box_kernel(rows, x0, x1)
    h = y1 - y0
    w = xb - xa
    if 2 * r >= h or 2 * r >= w:  # no disk fits in the box: the erosion is empty
        return _nothing(rows)
    reach_of = _reaches(r)
    # Erosion: vertical distances to the background (0), which also lies just above and below
    # the box, and all along the columns either side of it (reaching r columns in).
    grid = _grid(h * w, 0)
    _paint(grid, w, rows, x0, x1, y0, xa, 1)
    _column_distances(grid, h, w, _filled(w, -1), _filled(w, h), r + 1)
    cov = np.empty(w, np.int64)
    eroded = np.int64(0)
    for y in range(h):
        base = y * w
        _cover(grid, base, w, reach_of, cov)
        for x in range(r):
            cov[x] = 1
            cov[w - 1 - x] = 1
        for x in range(w):  # the eroded pixels become the features (0) of the dilation
            eroded += 1 - cov[x]
            grid[base + x] = cov[x]
    if eroded == 0:
        return _nothing(rows)
    # Dilation of the eroded pixels: the box's pixels within r of them (1).
    _column_distances(grid, h, w, _filled(w, -r - 1), _filled(w, h + r), r + 1)
    for y in range(h):
        base = y * w
        _cover(grid, base, w, reach_of, cov)
        for x in range(w):
            grid[base + x] = cov[x]
    return _segments(grid, h, w, y0, xa, 1)


@nb.njit(cache=True, nogil=True)
def _run_ends(top, bot, h, w, r, hw, c):
    """For box column ``c`` (relative to the box), the row where the dilation's run leaving the
    box upwards starts and the row where the one leaving it downwards ends, relative to the
    box's rows: above the box, row t is in D iff t >= min over mask columns x of ``top[x] -
    hw[|c - x|]`` (every mask pixel lies below, so the distance to the mask only grows
    upwards); likewise below."""
    t = np.int64(0)
    b = h - 1
    for x in range(max(0, c - r), min(w, c + r + 1)):
        if top[x] >= 0:
            d = abs(c - x)
            t = min(t, top[x] - hw[d])
            b = max(b, bot[x] + hw[d])
    return t, b


@nb.njit(cache=True, nogil=True)
def _records(values, lower, forward):
    """The columns whose value (``values[x]`` >= 0 only) beats every one met before them, in the
    order met: the lowest (``lower``) or highest, walking the columns forward or backward. Seen
    from a column beyond the box on the side walked from, only these can give the run ends: one
    farther off is a nearer one's better only if its value is better."""
    w = values.shape[0]
    out = np.empty(w, np.int64)
    k = np.int64(0)
    best = np.int64(-1)
    for i in range(w):
        x = i if forward else w - 1 - i
        v = values[x]
        if v >= 0 and (best < 0 or (v < best if lower else v > best)):
            best = v
            out[k] = x
            k += 1
    return head_kernel(out, k)


@nb.njit(cache=True, nogil=True)
def _staircase(top, bot, h, w, r, hw, left, upper):
    """The centres of the disks missing the mask that can reach the box from one of its four
    corners, one per row: ``(columns, rows)`` relative to the box. On the ``left`` side, column
    c = -1, -2, … -r; above the box (``upper``) the first row off D is ``T(c) - 1`` (see
    ``_run_ends``; rows above it are farther from every box pixel), below it ``B(c) + 1``. As
    c moves away, that row moves towards the box's rows, so a centre is kept only where its row
    differs from the nearer centre's (which reaches farther into the box from the same row),
    and only if it reaches a box pixel at all."""
    cand = _records(top if upper else bot, upper, left)
    cs = np.empty(r, np.int64)
    ts = np.empty(r, np.int64)
    k = np.int64(0)
    last = np.int64(-(1 << 62)) if upper else np.int64(1 << 62)
    for i in range(1, r + 1):
        c = -i if left else w - 1 + i
        edge = np.int64(0) if upper else h - 1
        for j in range(cand.shape[0]):
            x = cand[j]
            d = abs(c - x)
            if d > r:
                break
            edge = min(edge, top[x] - hw[d]) if upper else max(edge, bot[x] + hw[d])
        t = edge - 1 if upper else edge + 1
        if (upper and t <= last) or (not upper and t >= last):
            continue
        last = t
        d = -t if upper else t - (h - 1)  # to the nearest box row
        if d > r or (left and c + hw[d] < 0) or (not left and c - hw[d] > w - 1):
            continue
        cs[k] = c
        ts[k] = t
        k += 1
    return head_kernel(cs, k), head_kernel(ts, k)


@nb.njit(cache=True, nogil=True)
def distance_close_kernel(rows, x0, x1, r):
    """Closing (dilation, then erosion) by the disk of radius ``r`` >= 1 of the mask in an
    infinite background, cut to the image (as ``binary_closing(np.pad(mask, r), disk)[r:-r,
    r:-r]``): the result lies inside the mask's bounding box. A box pixel is out of the closing
    when a pixel off the dilation D lies within r of it. Those pixels, outside the box: left
    of it, D's part of each box row is one run ending at the box (every mask pixel lies right,
    so the distance to the mask grows leftwards), so the row's nearest pixel off D is the one
    just before that run; above and below the box, likewise per column (``_run_ends``,
    ``_staircase``). Inside the box: D's vertical distances, run on from those above and below
    it."""
    n = rows.shape[0]
    if n == 0:
        return _nothing(rows)
    y0, y1, xa, xb = box_kernel(rows, x0, x1)
    h = y1 - y0
    w = xb - xa
    hw = disk_half_widths(r)
    reach_of = _reaches(r)
    # Vertical distances to the mask (0) on the box; none outside it.
    grid = _grid(h * w, 1)
    _paint(grid, w, rows, x0, x1, y0, xa, 0)
    _column_distances(grid, h, w, _filled(w, -r - 1), _filled(w, h + r), r + 1)
    # Each box column's top and bottom mask rows (relative to the box; none: -1).
    top = _filled(w, -1)
    bot = _filled(w, -1)
    for k in range(n):
        for x in range(x0[k] - xa, x1[k] - xa):
            if top[x] < 0:
                top[x] = rows[k] - y0
            bot[x] = rows[k] - y0
    # Per box row, the pixels off D nearest to the box on either side (relative columns),
    # then D on the box (1; off D: 0) in place of the distances.
    off_left = _filled(h, -1)
    off_right = _filled(h, w)
    cov = np.empty(w, np.int64)
    for y in range(h):
        base = y * w
        for x in range(w):
            d = grid[base + x]
            if d <= r:
                off_left[y] = min(off_left[y], x - hw[d] - 1)
                off_right[y] = max(off_right[y], x + hw[d] + 1)
        _cover(grid, base, w, reach_of, cov)
        for x in range(w):
            grid[base + x] = cov[x]
    # The box's columns: the first rows off D above and below it, then vertical distances.
    above = _filled(w, -1)
    below = _filled(w, h)
    for x in range(w):
        if grid[x] == 1 or grid[(h - 1) * w + x] == 1:
            t, b = _run_ends(top, bot, h, w, r, hw, x)
            if grid[x] == 1:
                above[x] = t - 1
            if grid[(h - 1) * w + x] == 1:
                below[x] = b + 1
    _column_distances(grid, h, w, above, below, r + 1)
    # How far into each box row the pixels off D outside the box reach: from the left, box
    # columns up to reach_l[y]; from the right, from reach_r[y] on.
    reach_l = _filled(h, -1)
    reach_r = _filled(h, w)
    for y in range(h):
        _reach(reach_l, off_left[y], y, hw, r, w)
        _reach(reach_r, off_right[y], y, hw, r, w)
    for left in (True, False):
        for upper in (True, False):
            cs, ts = _staircase(top, bot, h, w, r, hw, left, upper)
            for k in range(cs.shape[0]):
                _reach(reach_l if left else reach_r, cs[k], ts[k], hw, r, w)
    for y in range(h):
        base = y * w
        _cover(grid, base, w, reach_of, cov)
        for x in range(min(reach_l[y] + 1, w)):
            cov[x] = 1
        for x in range(max(reach_r[y], 0), w):
            cov[x] = 1
        for x in range(w):
            grid[base + x] = cov[x]
    return _segments(grid, h, w, y0, xa, 0)


@nb.njit(cache=True, nogil=True)
def _reach(reach, c, t, hw, r, w):
    """Push ``reach`` on by the pixel ``(t, c)`` (relative to the box) left of the box (c < 0:
    ``reach[y]`` the farthest column reached into row y) or right of it (c >= w: the nearest),
    over the only rows it reaches into the box: q columns off the box, it reaches rows
    ``|y - t| <= hw[q]`` (``q² + d² <= r²`` is symmetric)."""
    h = reach.shape[0]
    q = -c if c < 0 else c - (w - 1)
    if q > r:
        return
    span = hw[q]
    for y in range(max(0, t - span), min(h, t + span + 1)):
        if c < 0:
            reach[y] = max(reach[y], c + hw[abs(y - t)])
        else:
            reach[y] = min(reach[y], c - hw[abs(y - t)])
