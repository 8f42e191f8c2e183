"""Custom fields: per-organization definitions of extra values on tickets and other
records, and the validation of those values."""
