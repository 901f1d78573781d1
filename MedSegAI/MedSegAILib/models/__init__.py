"""Models: model cards, networks, safe weight loading, the registry, bundles and the catalogue."""
