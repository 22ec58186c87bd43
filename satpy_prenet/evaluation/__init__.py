"""Skill scores of precipitation retrievals."""
