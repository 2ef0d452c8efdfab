"""The runs: each job's work from its settings to its files, read top to bottom."""
