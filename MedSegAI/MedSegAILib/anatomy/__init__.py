"""Classical CT rules that inference and training both use: body, airway, components, balls."""
