"""Pure metric functions (no models, no files): text accuracy (`text`) and confidence intervals (`stats`)."""
