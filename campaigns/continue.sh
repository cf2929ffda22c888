#!/usr/bin/env bash
# Continue the project's campaigns in the background, one worker (the other core stays free):
# first the independent test set, then the deeper series of the library. Both are resumable:
# rerun this script after a stop and finished states are skipped, checkpointed runs resumed.
#   nohup bash campaigns/continue.sh > campaign.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SUPERCOOLED_BIN:-.venv/bin/supercooled}
"$bin" campaign campaigns/independent.toml --library data/independent --workers 1
"$bin" campaign campaigns/paper.toml --library data/library --workers 1
