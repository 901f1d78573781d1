"""What `medsegai demo` runs on: the real chest CT when present, else a generated phantom."""
