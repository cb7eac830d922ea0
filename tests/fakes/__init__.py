"""Test doubles that plug in behind the product's real interfaces."""
