"""Service centers, appointments, programs, documents and module shipments (issue 13)."""
