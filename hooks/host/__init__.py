"""The reference host: a small, real implementation of the analytics platform's extension point."""
