"""Reports: how fast survivors were reached, for supervisors and grant reports. Read-only, from the timeline."""
