#!/usr/bin/env bash
# Live-migration benchmark (prints one table; not a test). Build first: ./scripts/build.sh
exec python3 "$(dirname "$0")/run.py" "$@"
