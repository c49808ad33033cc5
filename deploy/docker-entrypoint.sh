#!/bin/sh
# Container entry point: bring the schema up to date, then serve on all interfaces.
# Extra arguments go to `terreau serve` (e.g. --workers 4, with PostgreSQL only).
set -eu
terreau migrate
exec terreau serve --host 0.0.0.0 --port 8000 "$@"
