#!/bin/bash
# The job script of every task. `soopervisor export cluster` fills in the
# task's name and command (ploomber task <name> --entry-point pipeline.yaml)
# and submits it with sbatch, after the jobs of the task's upstream tasks
# (--dependency=afterok, --kill-on-invalid-dep=yes). The job runs in the folder
# it was submitted from, with the environment it was submitted with.
#SBATCH --job-name={{name}}
#SBATCH --output=cluster/logs/%x.%j.out
#SBATCH --export=ALL
set -euo pipefail

# env.cluster.yaml: tracking on, to MLFLOW_TRACKING_URI. The export must have
# rendered the DAG with it too, or it judges what is up to date differently.
if [ "${PLOOMBER_ENV_FILENAME:-}" != env.cluster.yaml ] || [ -z "${MLFLOW_TRACKING_URI:-}" ]; then
    echo "export PLOOMBER_ENV_FILENAME=env.cluster.yaml and MLFLOW_TRACKING_URI before soopervisor export" >&2
    exit 1
fi
# the project's venv, at the same path on every node
export PATH="$SLURM_SUBMIT_DIR/.venv/bin:$PATH"

srun {{command}}
