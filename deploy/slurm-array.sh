#!/bin/bash
# lungpath predict-slide over a slide archive as a Slurm job array: task i of N runs
# `--shard i/N`. Submit with:  sbatch --array=0-7 deploy/slurm-array.sh RUN OUT 'SLIDES_GLOB'
# (N is taken from the array size: SLURM_ARRAY_TASK_COUNT). Every task expands the same glob
# (sorted), so the N shards cover the list exactly once. A task that fails or is preempted can be
# resubmitted with the same command (or `--array=<i>`): finished slides (done.json) are skipped,
# an unfinished one resumes from its last finished batch.
#SBATCH --job-name=lungpath-predict-slide
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=lungpath-%A_%a.log
set -euo pipefail
RUN=${1:?usage: sbatch --array=0-N deploy/slurm-array.sh RUN OUT 'SLIDES_GLOB'}
OUT=${2:?output folder}
GLOB=${3:?slides glob, quoted, e.g. '/archive/*.svs'}
: "${SLURM_ARRAY_TASK_ID:?submit as a job array: sbatch --array=0-7 ...}"
SHARDS=${SLURM_ARRAY_TASK_COUNT:?}
# Array indices must be 0..N-1 (--array=0-7, not 1-8).
if (( SLURM_ARRAY_TASK_ID >= SHARDS )); then echo "array index ${SLURM_ARRAY_TASK_ID} ≥ ${SHARDS}: use --array=0-$((SHARDS - 1))" >&2; exit 2; fi
# shellcheck disable=SC2086  # the glob is expanded here, on purpose
exec npx lungpath predict-slide --run "$RUN" --out "$OUT" --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" $GLOB
