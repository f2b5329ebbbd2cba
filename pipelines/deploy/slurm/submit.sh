#!/bin/bash
# Queue the worker array and, once every task has ended, the merge-and-train job.
#   WORKERS=8 MANIFEST=manifests/default.yaml WORKDIR=/shared/emopipe/work DATA=/shared/RAVDESS \
#     pipelines/deploy/slurm/submit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
workers=${WORKERS:-8}
# Checked as text first: $(( )) would evaluate an expression (and any command substitution) inside it.
if ! [[ $workers =~ ^[1-9][0-9]{0,5}$ ]] || (( workers > 100000 )); then
    echo "submit.sh: WORKERS=$workers: expected a whole number from 1 to 100000" >&2
    exit 64
fi
export WORKERS=$workers
array=$(sbatch --parsable --export=ALL --array=0-$((workers - 1)) "$here/emopipe-workers.sbatch")
array=${array%%;*}   # --parsable prints "jobid;cluster" on a multi-cluster site: the dependency takes the id
# afterany: a task that failed outright leaves its worker directory unfinished; merge names it and leaves it
# out (exit 3), and the merge job stops before training.
sbatch --parsable --export=ALL --dependency=afterany:"$array" "$here/emopipe-merge.sbatch"
