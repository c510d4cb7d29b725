"""labctl lab: the course's labs run on the real system, step by step, checked, with a report (docs/labs.md)."""
