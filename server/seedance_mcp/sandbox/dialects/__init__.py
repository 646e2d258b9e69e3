"""One module per dialect the sandbox speaks: its create, status (and where it has them, list and delete) handlers
and the readers of its create bodies; `common` is what they share, `sandbox/app.py` the route table."""
