"""Example files installed with the package (printed by mbg mediate --example)."""
