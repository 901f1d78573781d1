"""The lab: data recipes, training and evaluation of the shipped models (never installed)."""
