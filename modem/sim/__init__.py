"""A simulated cellular module with a simulated network behind it (TS 27.005/27.007)."""
