"""The stages of the loop: the only code that knows the workspace.

`contract` is the stage contract (declared inputs, checks, the lock, the
up-to-date check, the staged folder and the manifest) with its runner;
`inputs` and `manifest` are its parts. One module per stage (`bench`,
`decide`, `synth`, `mine`, `recipe`, `train`, `eval`, `compress`, `cost`,
`calibrate`, `report`), listed in loop order by `registry`; `pipeline` is
``domainfit run``, a list of steps; `plan` and `train_budget` are the time
planner's records; `train_launch` and `train_worker` run training under DDP.
"""
