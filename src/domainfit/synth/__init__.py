"""Training data when labels are scarce: synthetic queries (offline, LLM, clicks), their filters and training pairs."""
