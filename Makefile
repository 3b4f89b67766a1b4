# The README's two commands. Both run scripts/setup.sh first (idempotent, quick when done).
.PHONY: setup demo test bench

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/hotline demo

test:
	./scripts/test.sh

bench: setup
	.venv/bin/python -m bench.ami_throughput
