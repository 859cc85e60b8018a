"""`python -m bench`: the same entry point as the `bench` console script."""

from bench.cli import main

raise SystemExit(main())
