"""``[run]``: settings of the whole loop, today its time budget."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domainfit.budget.duration import parse_duration


class RunConfig(BaseModel):
    """``[run]``: ``budget`` (``"30m"``, ``"1h30m"``, ``"90s"``; a bare number is minutes) or none."""

    model_config = ConfigDict(extra="forbid")

    budget: str | None = Field(
        None, description="wall time the whole run should fit in; the plan sizes steps, pilots and synthetic pairs"
    )
    min_train_steps: int = Field(20, ge=1, description="fewest training steps a budget may cut the full run to")

    @field_validator("budget", mode="before")
    @classmethod
    def _readable(cls, value: object) -> object:
        """Accept a duration string or a number of minutes; refuse anything else with what is accepted."""
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError('budget must be a duration such as "30m", "1h30m" or "90s"')
        parse_duration(value)
        return str(value) if isinstance(value, str) else f"{value}m"

    def budget_seconds(self) -> float | None:
        """Return the budget in seconds (None without one)."""
        return parse_duration(self.budget) if self.budget is not None else None
