"""The fault suite: real faults on the real lab, judged against Asterisk's own record."""
