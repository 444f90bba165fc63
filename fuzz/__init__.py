"""sipcert: fuzz."""
