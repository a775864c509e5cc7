"""The driver's own record from the uploaded log, and the monitoring authority's view of it."""
