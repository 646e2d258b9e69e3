"""The tools a model calls, one module per family, each with a `register(server, …)` seam used by `create_app`."""
