"""`trainyard`: a small command-line client of the Trainyard HTTP API."""
