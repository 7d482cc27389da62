"""Time budgets: measured probes on this machine, per-stage estimates and a plan fitted to a budget."""
