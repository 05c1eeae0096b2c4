#!/bin/bash
# A training job across several machines without Slurm: one data service per host and the
# trainer ranks, both started by Open MPI's mpirun (which reaches the other hosts over ssh, or
# whatever plm_rsh_agent names). What every host needs: hds-data-service and hds-trainer at the
# paths they have on PATH here, the configuration and train.output_dir on a shared file system,
# and passwordless ssh from this host.
#
#   hds-mpirun-job.sh --hosts a:R,b:R --config JOB.pbtxt [--set a.b=v ...] [--job-id ID]
#                     [--resume auto|PATH] [--ready-timeout SECONDS]
#
# R ranks run on each host (node-major: host a holds ranks 0..R-1). Each host's service listens on
# /tmp/hds-<job id>/data.sock there and writes its ready file (named for the host) into
# <config's folder>/.hds-ready-<job id>, which must be shared. A first SIGINT/SIGTERM asks the
# ranks to stop with a checkpoint (SIGUSR1), a second kills them. The services are stopped and
# their files removed whatever happens. Exit status: the trainers' (75: stopped with a
# checkpoint), 1 when the services could not start. Restarts, stop escalation and requeueing are
# hds-launch's (local on one machine, sbatch under Slurm); this script has none of them.
set -euo pipefail

usage() {
  sed -n '7,8p' "$0" | sed 's/^# *//' >&2
  exit 2
}

hosts="" config="" job_id="hds-$(hostname -s)-$$" resume="" ready_timeout=600
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=${2:?}; shift 2 ;;
    --config) config=${2:?}; shift 2 ;;
    --set) sets+=(--set "${2:?}"); shift 2 ;;
    --job-id) job_id=${2:?}; shift 2 ;;
    --resume) resume=${2:?}; shift 2 ;;
    --ready-timeout) ready_timeout=${2:?}; shift 2 ;;
    *) echo "hds-mpirun-job.sh: unknown argument $1" >&2; usage ;;
  esac
done
if [ -z "$hosts" ] || [ -z "$config" ]; then usage; fi
[ -r "$config" ] || { echo "hds-mpirun-job.sh: $config: cannot read the configuration" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
data_service=$(command -v hds-data-service) || { echo "hds-mpirun-job.sh: hds-data-service is not on PATH" >&2; exit 2; }
trainer=$(command -v hds-trainer) || { echo "hds-mpirun-job.sh: hds-trainer is not on PATH" >&2; exit 2; }

# "a:2,b:2" -> services on a:1,b:1; ranks 2 + 2.
service_hosts="" host_count=0 ranks=0
IFS=, read -r -a entries <<< "$hosts"
for entry in "${entries[@]}"; do
  if [[ ! $entry =~ ^[A-Za-z0-9._-]+:[1-9][0-9]*$ ]]; then
    echo "hds-mpirun-job.sh: --hosts $hosts: give HOST:RANKS,HOST:RANKS,..." >&2
    exit 2
  fi
  service_hosts+="${service_hosts:+,}${entry%%:*}:1"
  host_count=$((host_count + 1))
  ranks=$((ranks + ${entry##*:}))
done

mpirun=(mpirun --bind-to none --mca mpi_yield_when_idle 1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
socket=/tmp/hds-$job_id/data.sock
ready_dir=$(dirname "$config")/.hds-ready-$job_id
say() { echo "hds-mpirun-job $(date '+%F %T'): $*" >&2; }

services="" trainers="" stops=0
# shellcheck disable=SC2317  # cleanup and on_signal run from the traps
cleanup() {
  if [ -n "$services" ] && kill -0 "$services" 2> /dev/null; then
    kill -TERM "$services"  # mpirun passes it on: each service removes its rings and socket
    for _ in $(seq 300); do kill -0 "$services" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$services" 2> /dev/null || true
    wait "$services" 2> /dev/null || true
  fi
  rm -rf "$ready_dir"
}
# shellcheck disable=SC2317
on_signal() {
  stops=$((stops + 1))
  [ -n "$trainers" ] || exit 130
  if [ "$stops" -eq 1 ]; then
    say "stop requested: the ranks stop with a checkpoint at the next step (again to kill them)"
    kill -USR1 "$trainers" 2> /dev/null || true
  else
    kill -KILL "$trainers" 2> /dev/null || true
  fi
}
trap cleanup EXIT
trap on_signal INT TERM

rm -rf "$ready_dir" && mkdir -p "$ready_dir"
say "job $job_id: a data service on each of $host_count host(s), $ranks rank(s)"
"${mpirun[@]}" -H "$service_hosts" -np "$host_count" --map-by ppr:1:node \
  "$data_service" serve --config "$config" "${sets[@]}" --socket "$socket" \
  --job-id "$job_id" --ready-file "$ready_dir/%h" &
services=$!

deadline=$((SECONDS + ready_timeout))
while [ "$(find "$ready_dir" -maxdepth 1 -type f ! -name '*.partial*' | wc -l)" -lt "$host_count" ]; do
  if ! kill -0 "$services" 2> /dev/null; then
    say "a data service ended before every one was ready"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "not every data service was ready after $ready_timeout s (--ready-timeout)"
    exit 1
  fi
  sleep 0.2
done
say "data services ready on: $(find "$ready_dir" -maxdepth 1 -type f -printf '%f ')"

fit=("$trainer" fit --config "$config" "${sets[@]}"
  --set "data.service_socket=$socket" --set "data.service_job_id=$job_id")
if [ -n "$resume" ]; then fit+=(--resume "$resume"); fi
"${mpirun[@]}" -H "$hosts" -np "$ranks" --map-by slot "${fit[@]}" &
trainers=$!
# A signal interrupts wait while the ranks still run; bash keeps the status of the ended one.
while kill -0 "$trainers" 2> /dev/null; do wait "$trainers" || true; done
wait "$trainers" && code=0 || code=$?
say "the trainers exited with status $code"
exit "$code"
