"""Directory: agencies, areas, advocates and who is on call."""
