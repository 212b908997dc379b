"""Validation: the engines against each other (and, later, against measurements)."""
