#!/usr/bin/env bash
# slurm-local.sh — a real single-node SLURM cluster on this machine, for tests.
#
#   scripts/slurm-local.sh start    install (if missing), configure and start everything; wait for an idle node
#   scripts/slurm-local.sh stop     stop slurmd, slurmctld, slurmdbd, MariaDB and munge
#   scripts/slurm-local.sh status   show which daemons run, the node and the queue
#
# What it brings up (Debian bookworm packages slurm-wlm, slurmdbd, mariadb-server, munge):
#   munged -> MariaDB -> slurmdbd -> (sacctmgr add cluster) -> slurmctld -> slurmd
# each started only if it is not already running, so `start` is idempotent.
#
# Runs as root inside a container/VM without systemd and without usable cgroups, so:
#   * every daemon is started by hand (they daemonize themselves; MariaDB is put in the
#     background with setsid so it survives the shell that started it);
#   * process tracking is proctrack/linuxproc and task/none (no cgroup plugins);
#   * memory limits are enforced by jobacct_gather/linux + OverMemoryKill, i.e. by polling
#     each job's RSS, not by the kernel.
#
# All configuration lives in /etc/slurm (Debian's path); state and logs under /var.
# The lambda-hat SLURM tests (and a human) use it like this:
#   sudo scripts/slurm-local.sh start && sbatch --parsable --wrap hostname
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Names and paths. Overridable from the environment so that a test can use another cluster name.
# ---------------------------------------------------------------------------------------------
CLUSTER_NAME="${SLURM_LOCAL_CLUSTER:-lambdahat}"   # lower case: SLURM folds cluster names
PARTITION="${SLURM_LOCAL_PARTITION:-debug}"
DB_NAME="slurm_acct_db"
DB_USER="slurm"
# The accounting DB only listens on localhost (bind-address=127.0.0.1 in Debian's MariaDB config,
# socket connections) and holds test data, so a fixed password is enough here.
DB_PASS="${SLURM_LOCAL_DB_PASS:-slurm-local-test}"

SLURM_ETC=/etc/slurm
SLURM_CONF="$SLURM_ETC/slurm.conf"
SLURMDBD_CONF="$SLURM_ETC/slurmdbd.conf"
SLURM_LOG_DIR=/var/log/slurm
SLURMCTLD_STATE=/var/spool/slurmctld
SLURMD_STATE=/var/spool/slurmd
SLURM_RUN=/run/slurm            # pid files
MUNGE_RUN=/run/munge
MYSQL_RUN=/run/mysqld
MYSQL_SOCKET="$MYSQL_RUN/mysqld.sock"
MYSQL_PID="$MYSQL_RUN/mysqld.pid"
MYSQL_LOG=/var/log/mysql/slurm-local-mariadbd.log

# How long to wait for each daemon before giving up (seconds). Start to idle node is ~5 s normally.
WAIT_SECS=45

log() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { printf '[slurm-local] ERROR: %s\n' "$*" >&2; exit 1; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_until() {
    local secs="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.2
    done
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is a live process called NAME. Checking the name
# matters because /run is not a tmpfs in every container: after a restart a stale pid file may
# name an unrelated process that reused the pid.
pid_alive() {
    local pidfile="$1" name="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(<"$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]
}

# stop_pidfile NAME PIDFILE: SIGTERM the process NAME in PIDFILE and wait for it to go away
# (SIGKILL after 15 s). Kills exactly that pid, never by name.
stop_pidfile() {
    local name="$1" pidfile="$2" pid i
    if ! pid_alive "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(<"$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop after 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------
install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    command -v munged >/dev/null || missing+=(munge)
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    # Non-interactive; without systemd the packages' postinst cannot start services, which is
    # what we want: this script starts them itself.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        {
            DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
        }
}

# ---------------------------------------------------------------------------------------------
# munge: authentication between all SLURM daemons and commands
# ---------------------------------------------------------------------------------------------
start_munge() {
    # munged refuses to start unless its socket dir exists and is owned by the munge user.
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    if pid_alive "$MUNGE_RUN/munged.pid" munged; then
        log "munged already running"
    else
        log "starting munged"
        # Run as the munge user, as Debian's unit would; munged forks into the background.
        runuser -u munge -- /usr/sbin/munged
    fi
    wait_until "$WAIT_SECS" "munge round trip" bash -c 'munge -n | unmunge'
}

# ---------------------------------------------------------------------------------------------
# MariaDB: backing store of slurmdbd (accounting, i.e. sacct)
# ---------------------------------------------------------------------------------------------
mysql_up() { mysqladmin --socket="$MYSQL_SOCKET" ping >/dev/null 2>&1; }

start_mariadb() {
    install -d -o mysql -g mysql -m 0755 "$MYSQL_RUN" /var/log/mysql
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "initialising MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if mysql_up; then
        log "MariaDB already running"
    else
        log "starting MariaDB"
        # mariadbd does not daemonize; setsid + nohup detaches it from this shell's session and
        # process group, so it survives the caller (e.g. a test harness killing its job group).
        # slurmdbd checks these two InnoDB settings at start. The lock timeout is its recommended
        # value; the buffer pool is raised from 128M but kept below the recommended size on
        # purpose (a test DB is tiny), so slurmdbd still logs a harmless "not recommended" line.
        setsid nohup /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
            --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PID" \
            --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
            --log-error="$MYSQL_LOG" </dev/null >/dev/null 2>&1 &
        wait_until "$WAIT_SECS" "MariaDB to answer ping" mysql_up
    fi
    # Idempotent: safe on every start. root connects through unix_socket auth.
    mariadb --socket="$MYSQL_SOCKET" <<SQL
CREATE DATABASE IF NOT EXISTS ${DB_NAME};
CREATE USER IF NOT EXISTS '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
GRANT ALL PRIVILEGES ON ${DB_NAME}.* TO '${DB_USER}'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# ---------------------------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------------------------
# Set to 1 when a start rewrote a config with different content: daemons that are already
# running must then be restarted to pick it up (several settings, e.g. SelectType, are not
# changed by "scontrol reconfigure").
SLURM_CONF_CHANGED=0
SLURMDBD_CONF_CHANGED=0

# install_config TMP DEST FLAGVAR: move TMP over DEST unless identical; set FLAGVAR=1 if changed.
install_config() {
    local tmp="$1" dest="$2" flag="$3"
    if [[ -f "$dest" ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        return 0
    fi
    mv -f "$tmp" "$dest"
    printf -v "$flag" 1
}

write_slurmdbd_conf() {
    install -d -m 0755 "$SLURM_ETC"
    install -d -o slurm -g slurm -m 0755 "$SLURM_LOG_DIR" "$SLURM_RUN"
    local tmp
    tmp="$(mktemp "$SLURM_ETC/.slurmdbd.conf.XXXXXX")"
    cat >"$tmp" <<EOF
# Generated by scripts/slurm-local.sh — edits are overwritten on the next start.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$SLURM_RUN/slurmdbd.pid
LogFile=$SLURM_LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
# "localhost" makes the MySQL client use MariaDB's default unix socket, $MYSQL_SOCKET.
StorageHost=localhost
StoragePort=3306
StorageLoc=$DB_NAME
StorageUser=$DB_USER
StoragePass=$DB_PASS
EOF
    # slurmdbd refuses to start unless its config (which holds the DB password) is owned by
    # SlurmUser and not readable by others.
    chown slurm:slurm "$tmp"
    chmod 0600 "$tmp"
    install_config "$tmp" "$SLURMDBD_CONF" SLURMDBD_CONF_CHANGED
}

write_slurm_conf() {
    local host node_line
    host="$(hostname -s)"
    # The node's hardware exactly as slurmd detects it (CPUs, sockets, cores, RealMemory); a
    # NodeName line that claims more than slurmd finds would put the node in INVAL/DRAIN.
    node_line="$(slurmd -C | head -n1)"
    [[ "$node_line" == NodeName=* ]] || die "unexpected 'slurmd -C' output: $node_line"

    install -d -o slurm -g slurm -m 0755 "$SLURMCTLD_STATE"
    install -d -m 0755 "$SLURMD_STATE"

    local tmp
    tmp="$(mktemp "$SLURM_ETC/.slurm.conf.XXXXXX")"
    cat >"$tmp" <<EOF
# Generated by scripts/slurm-local.sh — edits are overwritten on the next start.
# A single-node test cluster: slurmctld, slurmd and slurmdbd all on $host.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none

StateSaveLocation=$SLURMCTLD_STATE
SlurmdSpoolDir=$SLURMD_STATE
SlurmctldPidFile=$SLURM_RUN/slurmctld.pid
SlurmdPidFile=$SLURM_RUN/slurmd.pid
SlurmctldLogFile=$SLURM_LOG_DIR/slurmctld.log
SlurmdLogFile=$SLURM_LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# --- No cgroups in the container: track job processes by walking /proc (linuxproc) and do
# no task binding/containment (task/none).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none

# --- Memory accounting and enforcement without cgroups: jobacct_gather/linux samples each
# task's RSS from /proc (this is where sacct's MaxRSS comes from), and OverMemoryKill kills a
# step whose RSS exceeds its --mem (the job ends FAILED, signal 9, "Exceeded job memory limit"
# in its output). Sampling every second so an over-limit job is killed within ~1-2 s.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1

# --- Accounting through slurmdbd (MariaDB) so sacct reports final state, exit code, Elapsed, MaxRSS.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none

# --- Several 1-CPU jobs at once on the 2 cores, memory as a consumable resource.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that gives no --mem would be allocated the whole node's memory and
# block every other job; 1 GiB per CPU keeps small test jobs side by side.
DefMemPerCPU=1024

# --- Fast scheduling for tests: the main scheduler runs on every submit/completion anyway;
# sched_interval/bf_interval bound the delay for jobs that become eligible otherwise
# (dependencies, array throttles). Trivial jobs start within ~1 s.
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,bf_resolution=60
PriorityType=priority/basic

# --- Quick turnover for tests.
# Finished job records stay in slurmctld (squeue -t all, scontrol show job) for MinJobAge
# seconds; after that only sacct knows them. Short so the controller does not pile up records,
# long enough for a poller with a few seconds' interval to still see the final state.
MinJobAge=10
# Seconds between SIGTERM and SIGKILL when a job hits its time limit or is cancelled (default 30).
KillWait=2
# No grace period beyond the time limit (default 0, explicit for clarity).
OverTimeLimit=0
# Large arrays (one array task per sampler run) are fine; max index = MaxArraySize - 1.
MaxArraySize=100001
MaxJobCount=200000
# A restarted slurmd brings the node back to service without a manual "scontrol update".
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0

# --- The node and the default partition.
$node_line State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    chmod 0644 "$tmp"
    install_config "$tmp" "$SLURM_CONF" SLURM_CONF_CHANGED
}

# ---------------------------------------------------------------------------------------------
# SLURM daemons
# ---------------------------------------------------------------------------------------------
start_slurmdbd() {
    if ((SLURMDBD_CONF_CHANGED)) && pid_alive "$SLURM_RUN/slurmdbd.pid" slurmdbd; then
        log "slurmdbd.conf changed; restarting slurmdbd"
        stop_pidfile slurmdbd "$SLURM_RUN/slurmdbd.pid"
    fi
    if pid_alive "$SLURM_RUN/slurmdbd.pid" slurmdbd; then
        log "slurmdbd already running"
    else
        log "starting slurmdbd"
        /usr/sbin/slurmdbd
    fi
    # Ready once it answers a query through the full chain (sacctmgr -> slurmdbd -> MariaDB).
    wait_until "$WAIT_SECS" "slurmdbd to answer sacctmgr" sacctmgr -n list cluster
}

register_cluster() {
    # slurmctld registers with slurmdbd under ClusterName; the cluster must exist in the
    # accounting DB first, otherwise jobs are not recorded.
    if [[ -z "$(sacctmgr -n -P list cluster "$CLUSTER_NAME" format=Cluster)" ]]; then
        log "adding cluster $CLUSTER_NAME to accounting"
        sacctmgr -i add cluster "$CLUSTER_NAME" >&2
    fi
}

start_slurmctld() {
    if ((SLURM_CONF_CHANGED)) && pid_alive "$SLURM_RUN/slurmctld.pid" slurmctld; then
        log "slurm.conf changed; restarting slurmctld"
        stop_pidfile slurmctld "$SLURM_RUN/slurmctld.pid"
    fi
    if pid_alive "$SLURM_RUN/slurmctld.pid" slurmctld; then
        log "slurmctld already running"
    else
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    wait_until "$WAIT_SECS" "slurmctld to answer ping" bash -c 'scontrol ping | grep -q UP'
}

start_slurmd() {
    if ((SLURM_CONF_CHANGED)) && pid_alive "$SLURM_RUN/slurmd.pid" slurmd; then
        log "slurm.conf changed; restarting slurmd (running jobs continue)"
        stop_pidfile slurmd "$SLURM_RUN/slurmd.pid"
    fi
    if pid_alive "$SLURM_RUN/slurmd.pid" slurmd; then
        log "slurmd already running"
    else
        log "starting slurmd"
        /usr/sbin/slurmd
    fi
}

node_idle() {
    # %t = compact state; "idle", or "mix"/"alloc" if jobs already run (e.g. start while busy).
    local state
    state="$(sinfo -h -N -o '%t' 2>/dev/null | head -n1)"
    [[ "$state" == idle || "$state" == mix || "$state" == alloc ]]
}

wait_node_ready() {
    local deadline=$((SECONDS + WAIT_SECS)) state
    until node_idle; do
        state="$(sinfo -h -N -o '%t %E' 2>/dev/null | head -n1 || true)"
        # A drained/down node will not recover by waiting; resume it once (e.g. after a config change).
        if [[ "$state" == drain* || "$state" == down* ]]; then
            log "node is '$state'; resuming it"
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        fi
        ((SECONDS < deadline)) || die "node not idle after ${WAIT_SECS}s (sinfo: '$state'); see $SLURM_LOG_DIR"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
cmd_start() {
    [[ "$(id -u)" == 0 ]] || die "must run as root"
    local t0=$SECONDS
    install_packages
    start_munge
    start_mariadb
    # Both configs before any daemon: the client commands (sacctmgr included) need slurm.conf.
    write_slurmdbd_conf
    write_slurm_conf
    start_slurmdbd
    register_cluster
    start_slurmctld
    start_slurmd
    wait_node_ready
    log "cluster '$CLUSTER_NAME' up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %a %D %t %C')"
}

no_running_jobs() { [[ -z "$(squeue -h -t RUNNING,COMPLETING,SUSPENDED -o %i)" ]]; }

# Cancel every job still queued or running. Job steps (slurmstepd + the job's processes) are
# separate from slurmd and would keep running after it stops, so a "stopped" cluster would
# still be computing. Only possible while slurmctld answers.
cancel_all_jobs() {
    pid_alive "$SLURM_RUN/slurmctld.pid" slurmctld || return 0
    local ids
    ids="$(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o '%F' 2>/dev/null | sort -u | tr '\n' ' ')"
    [[ -n "${ids// /}" ]] || return 0
    log "cancelling jobs: $ids"
    # shellcheck disable=SC2086 # word splitting of the id list is intended
    scancel $ids || true
    # SIGTERM, KillWait (2 s), SIGKILL, then the epilog: a few seconds at most.
    wait_until 30 "cancelled jobs to end" no_running_jobs
}

cmd_stop() {
    [[ "$(id -u)" == 0 ]] || die "must run as root"
    cancel_all_jobs
    # Reverse order of start; pid files make sure we stop exactly the daemons this script started.
    stop_pidfile slurmd "$SLURM_RUN/slurmd.pid"
    stop_pidfile slurmctld "$SLURM_RUN/slurmctld.pid"
    stop_pidfile slurmdbd "$SLURM_RUN/slurmdbd.pid"
    if mysql_up; then
        log "stopping MariaDB"
        mysqladmin --socket="$MYSQL_SOCKET" shutdown || stop_pidfile mariadbd "$MYSQL_PID"
    fi
    wait_until 30 "MariaDB to stop" bash -c "! mysqladmin --socket='$MYSQL_SOCKET' ping"
    stop_pidfile munged "$MUNGE_RUN/munged.pid"
    log "stopped"
}

cmd_status() {
    local name pidfile rc=0
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        case "$name" in
        munged) pidfile="$MUNGE_RUN/munged.pid" ;;
        mariadbd) pidfile="$MYSQL_PID" ;;
        *) pidfile="$SLURM_RUN/$name.pid" ;;
        esac
        if pid_alive "$pidfile" "$name"; then
            printf '%-10s running (pid %s)\n' "$name" "$(<"$pidfile")"
        else
            printf '%-10s stopped\n' "$name"
            rc=1
        fi
    done
    if pid_alive "$SLURM_RUN/slurmctld.pid" slurmctld; then
        echo
        sinfo -N -o '%N %P %t %C %m %E' || true
        echo
        squeue -o '%i %j %T %M %r' || true
    fi
    return "$rc"
}

main() {
    case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
    esac
}

main "$@"
