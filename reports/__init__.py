"""sipcert: reports."""
