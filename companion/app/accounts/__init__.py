"""Portal accounts: users and roles, account<->device links, passwords, sessions, single-use tokens, audit."""
