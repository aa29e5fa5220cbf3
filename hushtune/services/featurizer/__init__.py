"""Catalog builder: audio folder -> features -> linear model -> Concrete-ML circuit -> registry."""
