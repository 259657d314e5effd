"""The ratings reader's compiled fast path (numba): one pass over the bytes of plain rows.

Kept apart from :mod:`recommender.engine.readers` so that importing the reader,
and parsing small files, does not load numba; see ``readers._parse_plain``.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

#: Longest digit string the fast path parses as an int64 (18 digits cannot overflow).
FAST_MAX_DIGITS = 18
#: Longest digit string of a score the fast path parses (mantissa and 10**d exact in float64).
FAST_MAX_SCORE_DIGITS = 15


@njit(cache=True, nogil=True)
def count_lines(buf: NDArray[np.uint8]) -> int:
    count = 0
    for byte in buf:
        count += byte == 10
    return count


@njit(cache=True, nogil=True)
def parse_plain_rows(
    buf: NDArray[np.uint8],
    sep: int,
    ncols: int,
    columns: NDArray[np.int64],
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    scores: NDArray[np.float64],
    stamps: NDArray[np.int64],
) -> int:
    """Rows of plain values, parsed in one pass over ``buf`` (ends with a newline); -1 for any other row.

    ``columns`` = positions of the user, item, score and timestamp fields (-1:
    no timestamp). A plain row has ``ncols`` fields; its ids and timestamp are
    1-18 ASCII digits, its score 1-15 digits with at most one ``.``; empty
    lines are skipped. The score is ``m / 10**d`` for the digits ``m`` and ``d``
    digits after the point: both exact in float64, so the quotient is the
    correctly rounded value ``float(text)`` gives. Anything else (spaces,
    quotes, signs, exponents, wrong field counts) returns -1 and the caller
    takes the general path, which finds and names the line.
    """
    n = buf.shape[0]
    pos = 0
    row = 0
    user_col, item_col, score_col, stamp_col = columns[0], columns[1], columns[2], columns[3]
    while pos < n:
        if buf[pos] == 10:  # an empty line
            pos += 1
            continue
        col = 0
        while True:
            value = 0
            digits = 0
            after_point = -1
            plain = True
            while pos < n:
                byte = buf[pos]
                if byte == sep or byte == 10:
                    break
                if 48 <= byte <= 57:
                    value = value * 10 + (byte - 48)
                    digits += 1
                    if after_point >= 0:
                        after_point += 1
                elif byte == 46 and after_point < 0:
                    after_point = 0
                else:
                    plain = False
                pos += 1
            if col == score_col:
                if not plain or digits == 0 or digits > FAST_MAX_SCORE_DIGITS:
                    return -1
                scores[row] = value / 10.0 ** max(after_point, 0)
            elif col in (user_col, item_col, stamp_col):
                if not plain or digits == 0 or digits > FAST_MAX_DIGITS or after_point >= 0:
                    return -1
                if col == user_col:
                    users[row] = value
                elif col == item_col:
                    items[row] = value
                else:
                    stamps[row] = value
            col += 1
            if pos >= n:
                return -1
            if buf[pos] == 10:
                pos += 1
                break
            pos += 1  # the separator
        if col != ncols:
            return -1
        row += 1
    return row
