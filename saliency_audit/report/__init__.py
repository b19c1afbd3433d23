"""Evidence (JSON) and, later, the standalone HTML report."""
