# Recipes for working on trio-supervisor. `just --list` shows them all.

# Run the whole test suite.
test *args:
    python3 -m pytest {{args}}

# Lint and check formatting.
lint:
    python3 -m ruff check .
    python3 -m ruff format --check .

# Format the tree in place.
fmt:
    python3 -m ruff format .
    python3 -m ruff check --fix .

# Strict type check of both packages.
typecheck:
    python3 -m mypy

# Measure costs as ratios against raw trio, measured in the same run.
bench *args:
    python3 -m bench {{args}}

# A million idle actors in one process: RSS, spawn and teardown per actor (opt-in; minutes).
bench-million *args:
    python3 -m bench million {{args}}

# Run the demo.
demo:
    python3 -m supervisor demo
