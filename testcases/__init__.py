"""sipcert: testcases."""
