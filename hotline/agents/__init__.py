"""Agents: the directory (who they are, their skills) and their queue membership in Asterisk."""
