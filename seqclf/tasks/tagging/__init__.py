"""Tagging (many-to-many): a tag for every word."""
