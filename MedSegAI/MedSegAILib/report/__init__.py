"""Human-readable reports of a job's outputs (the demo's summary figure)."""
