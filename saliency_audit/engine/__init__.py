"""The engine: what computes maps and model passes and runs an audit (:class:`saliency_audit.Audit`).

It sits above the criteria, methods, models and data it drives, and above the evidence and decisions it
records; only the pytest plugin and the CLI import it."""
