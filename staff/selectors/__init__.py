"""Reads for the staff pages, one module per page or concern."""
