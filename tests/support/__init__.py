"""Helpers the tests share: AMI replays and an agent-page client without a browser."""
