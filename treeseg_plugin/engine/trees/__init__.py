"""Trees: vegetation evidence per cluster, the tree rule, the canopy mask and the crowns."""
