"""`python -m bench.profiled_server OUT.prof serve --http …`: the seedance-mcp command line under cProfile (the main
thread), the profile written to OUT.prof when the server exits (SIGTERM is a clean shutdown for uvicorn)."""

from __future__ import annotations

import cProfile
import sys


def main(argv: list[str]) -> int:
    from seedance_mcp.__main__ import main as seedance_main

    out, *arguments = argv
    sys.argv = ["seedance-mcp", *arguments]
    profiler = cProfile.Profile()
    try:
        profiler.runcall(seedance_main)
    except SystemExit:
        pass
    finally:
        profiler.dump_stats(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
