"""Headshot Workbench."""
