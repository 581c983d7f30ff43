"""Looking at students and devices without training: drawings, benchmarks, the backend table."""
