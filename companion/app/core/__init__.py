"""Configuration, database, key handling and the sync wire checks."""
