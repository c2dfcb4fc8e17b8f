"""Generators of training configurations."""
