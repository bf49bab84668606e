"""hmi package."""
