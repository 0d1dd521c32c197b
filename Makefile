# The two commands of the README. Both install what they need first (scripts/setup.sh).
.PHONY: up test setup

# Set up and run the whole studio on this machine: http://127.0.0.1:8000
up:
	scripts/setup.sh
	.venv/bin/aistudio up $(ARGS)

# Set up and run the whole test suite (real hub, proxy, JupyterLab servers, Chromium)
test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest $(PYTEST_ARGS)

setup:
	scripts/setup.sh
