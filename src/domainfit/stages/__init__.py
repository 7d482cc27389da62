"""The stages of the loop: the stage contract and one module per stage (the only code that knows the workspace)."""
