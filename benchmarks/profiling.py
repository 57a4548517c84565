"""Shared by the benchmark scripts: a cProfile run printed to stderr, by cumulative and by own time."""

from __future__ import annotations

import cProfile
import io
import pstats
import sys


def print_profile(pr: cProfile.Profile, cumulative: int, own: int) -> None:
    """The ``cumulative`` top functions by cumulative time, then the ``own`` top by internal time, on stderr."""
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(cumulative)
    buf.write("\n--- by internal time ---\n")
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(own)
    print(buf.getvalue(), file=sys.stderr)
