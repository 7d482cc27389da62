"""Text hygiene shared by every stage: Unicode normalisation and language identification."""
