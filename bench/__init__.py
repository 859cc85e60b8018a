"""Load-testing and benchmarking harness for browser-as-a-service async session APIs."""

__version__ = "0.1.0"
