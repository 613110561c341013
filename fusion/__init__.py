"""Per-class weighted fusion and class selection, on top of the voting engine."""
