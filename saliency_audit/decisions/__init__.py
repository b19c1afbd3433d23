"""Decisions over several verdicts: the family gate (Holm / Bonferroni), the comparison with an earlier
release and its regression gate, and the power of a design.  Above the criteria, below the evidence."""
