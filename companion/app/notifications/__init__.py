"""Notifications stored per account, and the email outbox a worker delivers over SMTP."""
