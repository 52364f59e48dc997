"""The learning pipeline: CI and operations events into typed memory records."""
