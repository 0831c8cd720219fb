#!/usr/bin/env bash
# moesim sweep on the distributed engines users already have, run for real: a single-node Slurm
# (slurmctld and slurmd from Debian's slurm-wlm, authenticated by munge) runs the 108-point DeepSeek-V3
# layout sweep as `sbatch --array=0-3`, once killed with SIGKILL midway (scancel) and resubmitted, and
# Open MPI runs it with `mpirun -np 2`. Each must end with exactly one result per point and no point
# computed twice. Needs root (Slurm runs as root here, munged as the munge user) and the packages
# slurm-wlm, munge and openmpi-bin (tools/setup.sh installs them).
#   bash tests/sweep_cluster_test.sh MOESIM SOURCE_DIR WORK_DIR
set -euo pipefail
moesim=$1 src=$2 work=$3
fail() { echo "sweep_cluster_test: $*" >&2; exit 1; }
for c in sbatch squeue scancel sinfo slurmctld slurmd munged munge unmunge mpirun runuser; do
  command -v "$c" >/dev/null ||
    fail "needs $c: install slurm-wlm, munge and openmpi-bin (bash tools/setup.sh), or leave this test out with ctest -LE cluster"
done
((EUID == 0)) || fail "needs root (it starts slurmctld, slurmd and munged), or leave it out with ctest -LE cluster"
sweep=$src/scenarios/sweeps/deepseek-v3-layouts.json
points=108

rm -rf "$work"
mkdir -p "$work/slurm/spool" "$work/slurm/state"
# munged runs as the munge user, which may not reach into the build tree (a home folder of mode 0700):
# its files go to a folder of their own under /tmp, removed on exit.
mdir=$(mktemp -d /tmp/moesim-munge.XXXXXX)
# Daemons this script started, stopped by process id on exit (never by name).
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$mdir"
}
trap cleanup EXIT

# munge with its own socket, key copy and files in the scratch folder.
# munged wants the socket's folder open to all and the key's closed to others.
chmod 0755 "$mdir"
mkdir -p "$mdir/key"
chown munge:munge "$mdir" "$mdir/key"
chmod 0700 "$mdir/key"
[[ -r /etc/munge/munge.key ]] || fail "no /etc/munge/munge.key (the munge package creates it)"
install -o munge -g munge -m 0400 /etc/munge/munge.key "$mdir/key/munge.key"
sock=$mdir/munge.socket
runuser -u munge -- munged --foreground --socket="$sock" --key-file="$mdir/key/munge.key" \
  --pid-file="$mdir/munged.pid" --seed-file="$mdir/munged.seed" \
  --log-file="$mdir/munged.log" >"$mdir/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -S $sock ]] && break; sleep 0.1; done
munge --socket="$sock" -n | unmunge --socket="$sock" | grep -q "STATUS: *Success" ||
  fail "munge does not work: $(cat "$mdir/munged.out" "$mdir/munged.log" 2>/dev/null)"

host=$(hostname -s)
export SLURM_CONF=$work/slurm/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=moesimtest
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldPidFile=$work/slurm/slurmctld.pid
SlurmdPidFile=$work/slurm/slurmd.pid
SlurmdSpoolDir=$work/slurm/spool
StateSaveLocation=$work/slurm/state
SlurmctldLogFile=$work/slurm/slurmctld.log
SlurmdLogFile=$work/slurm/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -c -f "$SLURM_CONF" >"$work/slurm/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/slurm/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break
  sleep 0.1
done
[[ $(sinfo -h -o %T 2>/dev/null) == idle ]] ||
  fail "the Slurm node did not come up: $(tail -5 "$work/slurm/slurmctld.log" "$work/slurm/slurmd.log" 2>&1)"

# The job: one sweep process per array task, one worker each; the task's variables pick its shard.
cat >"$work/job.sh" <<JOB
#!/usr/bin/env bash
exec "$moesim" sweep "$sweep" --out "\$1" -j 1
JOB
chmod +x "$work/job.sh"

# wait_job ID: until the job (every array task) has left the queue.
wait_job() {
  for _ in $(seq 1 1800); do
    [[ -z $(squeue -h -j "$1" 2>/dev/null) ]] && return 0
    sleep 0.2
  done
  fail "job $1 still queued after 6 minutes: $(squeue 2>&1)"
}
# check_sweep DIR WHAT: one result file per point, no claim left, no point computed twice, at most
# `points` computations (a point killed after its file was written is not computed again).
check_sweep() {
  local dir=$1 what=$2
  local files computed unique
  files=$(find "$dir/points" -name '*.json' | wc -l)
  ((files == points)) || fail "$what: $files point files, expected $points"
  [[ -z $(find "$dir/points" -name '*.claim') ]] || fail "$what: claim files left behind"
  computed=$(wc -l <"$dir/computed.log")
  unique=$(sort -u "$dir/computed.log" | wc -l)
  ((computed == unique)) || fail "$what: $computed computations of $unique points: a point was computed twice"
  ((computed <= points)) || fail "$what: $computed computations, more than the $points points"
  "$moesim" report merge "$dir" 2>/dev/null
  (($(wc -l <"$dir/merged.csv") == points + 1)) || fail "$what: merged.csv does not hold one row per point"
}

# 1. sbatch --array=0-3: four shards, every point once.
job=$(sbatch --parsable --array=0-3 -o "$work/array-%a.out" -e "$work/array-%a.err" "$work/job.sh" "$work/slurm_out")
wait_job "$job"
for k in 0 1 2 3; do
  grep -q "shard $k/4 (SLURM_ARRAY_TASK_ID)" "$work/array-$k.err" ||
    fail "array task $k did not run shard $k/4 from SLURM_ARRAY_TASK_ID: $(cat "$work/array-$k.err")"
done
check_sweep "$work/slurm_out" "sbatch --array=0-3"
(($(wc -l <"$work/slurm_out/computed.log") == points)) || fail "sbatch --array=0-3: not every point computed once"

# 2. The same sweep killed with SIGKILL midway (scancel), then submitted again: it finishes every point,
# none computed twice.
job=$(sbatch --parsable --array=0-3 -o "$work/kill-%a.out" -e "$work/kill-%a.err" "$work/job.sh" "$work/killed")
for _ in $(seq 1 600); do
  n=$( (find "$work/killed/points" -name '*.json' 2>/dev/null || true) | wc -l)
  ((n >= 10)) && break
  sleep 0.05
done
scancel --signal=KILL --full "$job"
wait_job "$job"
before=$(find "$work/killed/points" -name '*.json' | wc -l)
((before < points)) || fail "the array finished before it could be killed ($before points)"
job=$(sbatch --parsable --array=0-3 -o "$work/resume-%a.out" -e "$work/resume-%a.err" "$work/job.sh" "$work/killed")
wait_job "$job"
check_sweep "$work/killed" "killed with SIGKILL after $before points and resubmitted"
echo "sweep_cluster_test: Slurm: killed after $before of $points points, resubmitted, $points once each"

# 3. mpirun -np 2: two ranks, two shards.
mpirun --allow-run-as-root --oversubscribe -np 2 "$moesim" sweep "$sweep" --out "$work/mpi_out" -j 1 \
  >"$work/mpi.out" 2>"$work/mpi.err" || fail "mpirun failed: $(tail -20 "$work/mpi.err")"
for k in 0 1; do
  grep -q "shard $k/2 (OMPI_COMM_WORLD_RANK)" "$work/mpi.err" ||
    fail "mpirun: no rank ran shard $k/2 from OMPI_COMM_WORLD_RANK: $(cat "$work/mpi.err")"
done
check_sweep "$work/mpi_out" "mpirun -np 2"
(($(wc -l <"$work/mpi_out/computed.log") == points)) || fail "mpirun -np 2: not every point computed once"
echo "sweep_cluster_test: ok"
