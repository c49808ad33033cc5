"""The web pages, one module per area; each exposes ``routes``."""
