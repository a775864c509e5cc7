"""Pure interlock logic: time comes in as arguments, effects go out through the board verbs."""
