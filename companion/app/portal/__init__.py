"""The portal's driver-facing services (dashboard, codes and clears, profile, help): the one service layer the
web pages and the JSON API both call."""
