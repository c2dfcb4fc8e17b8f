"""Continuum crack models: near-tip LEFM fields (lefm), finite elements, field predictors."""
