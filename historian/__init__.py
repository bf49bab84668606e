"""historian package."""
