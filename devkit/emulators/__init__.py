"""Local stand-ins for external platforms (tests and the local demo)."""
