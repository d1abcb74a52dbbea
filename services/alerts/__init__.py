"""Alerts: the worker that finds who is on call and alerts them; Twilio callbacks; the advocate's link."""
