"""Processing provider of TreeSeg: a thin translation from Processing parameters to the engine."""
