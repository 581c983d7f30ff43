"""Many runs and what they show: grids, reports, the paper's reproductions, the demo."""
