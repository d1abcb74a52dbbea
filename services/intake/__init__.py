"""Intake: receives CAD events, triages them and queues callouts; serves incident timelines."""
