#!/usr/bin/env bash
# Density benchmark (prints one table; not a test). Build first: cmake --build build
exec python3 "$(dirname "$0")/run.py" "$@"
