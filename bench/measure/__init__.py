"""Measuring: the Locust-facing side (options, journeys, transports, clean-up, roles, wiring)."""
