"""`make bench`: Callout measured on this machine, against a real PostgreSQL and the fake Twilio."""
