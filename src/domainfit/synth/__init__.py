"""Training data when labels are scarce: synthetic queries, hard negatives, curriculum."""
