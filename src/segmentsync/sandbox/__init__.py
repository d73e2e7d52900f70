"""Local emulators of the Campaign Monitor and Constant Contact APIs (demo, tests, benchmarks)."""
