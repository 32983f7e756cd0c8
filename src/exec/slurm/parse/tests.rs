//! Tests of the parsers, on outputs captured from a real SLURM.

use super::*;

#[test]
fn pending_reasons_that_never_clear_get_advice_and_the_others_none() {
    for r in [
        "PartitionConfig",
        "ReqNodeNotAvail",
        "PartitionTimeLimit",
        "InvalidQOS",
        "AssocMaxCpuPerJobLimit",
        "QOSMaxMemoryPerJob",
    ] {
        assert!(stuck_pending_advice(r).is_some(), "{r}");
    }
    for r in [
        "Priority",
        "Resources",
        "Dependency",
        "JobArrayTaskLimit",
        "BeginTime",
    ] {
        assert_eq!(stuck_pending_advice(r), None, "{r}");
    }
}

/// SLURM appends details to several reasons; the advice follows the first word, and a drained
/// node is not answered with "lower cpus_per_task".
#[test]
fn stuck_reasons_with_details_appended_get_advice() {
    let out = "\
12_0|PENDING|ReqNodeNotAvail, UnavailableNodes:vm
12_1|PENDING|ReqNodeNotAvail, May be reserved for other job
13|PENDING|PartitionConfig
14|PENDING|QOSMaxCpuPerJobLimit
15|PENDING|Resources
16|PENDING|Priority
";
    let entries = parse_squeue(out).unwrap();
    let advice: Vec<_> = entries
        .iter()
        .map(|e| e.reason.as_deref().and_then(stuck_pending_advice))
        .collect();
    for a in &advice[..2] {
        let a = a.expect("ReqNodeNotAvail with details got no advice");
        assert!(a.contains("down or drained"), "{a}");
        assert!(!a.contains("lower cpus_per_task"), "{a}");
    }
    assert!(advice[2].unwrap().contains("lower cpus_per_task"));
    assert!(advice[3].is_some());
    assert_eq!(advice[4], None);
    assert_eq!(advice[5], None);
    assert!(stuck_pending_advice("BadConstraints(gpu)").is_some());
    assert!(stuck_pending_advice("PartitionTimeLimit, extra").is_some());
    // A reason merely starting with a known word's letters is not that reason.
    assert_eq!(stuck_pending_advice("ReqNodeNotAvailable2"), None);
}

// ---- outputs captured from the real SLURM 22.05 of scripts/slurm-local.sh ----

#[test]
fn sbatch_parsable_plain_and_cluster_suffix() {
    assert_eq!(parse_sbatch_parsable("41\n"), Ok(41));
    assert_eq!(parse_sbatch_parsable("29\n"), Ok(29)); // an --array submission
    assert_eq!(parse_sbatch_parsable("123;lambdahat\n"), Ok(123));
    assert_eq!(parse_sbatch_parsable("note from a plugin\n77\n"), Ok(77));
    assert!(matches!(
        parse_sbatch_parsable(""),
        Err(ParseError::NoJobId(_))
    ));
    assert!(matches!(
        parse_sbatch_parsable("abc\n"),
        Err(ParseError::NoJobId(_))
    ));
}

#[test]
fn sbatch_failures_are_classified() {
    let down = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n";
    assert!(classify_sbatch_failure(down).is_transient());

    let qos = "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)\n";
    assert!(classify_sbatch_failure(qos).is_transient());

    let dep = "sbatch: error: Batch job submission failed: Job dependency problem\n";
    assert_eq!(
        classify_sbatch_failure(dep),
        SubmitError::DependencyProblem {
            message: dep.trim().to_string()
        }
    );

    let part = "sbatch: error: invalid partition specified: nosuchpart\nsbatch: error: Batch job submission failed: Invalid partition name specified\n";
    let e = classify_sbatch_failure(part);
    assert!(matches!(e, SubmitError::Rejected { .. }));
    assert_eq!(e.message(), part.trim()); // verbatim, both lines

    // Not captured here (documented SLURM messages).
    for transient in [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
        "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
        "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
    ] {
        assert!(
            classify_sbatch_failure(transient).is_transient(),
            "{transient}"
        );
    }
    let wall = "sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)";
    assert!(matches!(
        classify_sbatch_failure(wall),
        SubmitError::Rejected { .. }
    ));
    let mem = "sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job submission failed: Requested node configuration is not available";
    assert!(matches!(
        classify_sbatch_failure(mem),
        SubmitError::Rejected { .. }
    ));
}

#[test]
fn query_failures_are_classified() {
    let gone = "slurm_load_jobs error: Invalid job id specified\n";
    assert!(matches!(
        classify_query_failure(gone),
        QueryError::NoSuchJob { .. }
    ));
    let down = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n";
    assert!(classify_query_failure(down).is_transient());
    let dbd = "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:localhost:6819: Connection refused\nsacct: error: Sending PersistInit msg: Connection refused\nsacct: error: Problem talking to the database: Connection refused\n";
    assert!(classify_query_failure(dbd).is_transient());
    assert!(matches!(
        classify_query_failure("squeue: error: Invalid user: nobodyx"),
        QueryError::Failed { .. }
    ));
}

#[test]
fn job_ids_and_ranges() {
    assert_eq!("123".parse::<JobKey>(), Ok(JobKey::job(123)));
    assert_eq!("123_4".parse::<JobKey>(), Ok(JobKey::task(123, 4)));
    assert_eq!(JobKey::task(123, 4).to_string(), "123_4");
    assert_eq!(JobKey::job(9).to_string(), "9");
    assert!("123_[4-5]".parse::<JobKey>().is_err());
    assert!("123.batch".parse::<JobKey>().is_err());
    assert!("-1".parse::<JobKey>().is_err());
    assert!("".parse::<JobKey>().is_err());

    let keys = parse_job_ids("3_[2-5%2]").unwrap();
    assert_eq!(
        keys,
        (2..=5).map(|t| JobKey::task(3, t)).collect::<Vec<_>>()
    );
    assert_eq!(parse_array_indices("1,3,5-9:2"), Ok(vec![1, 3, 5, 7, 9]));
    assert_eq!(parse_array_indices("0-5%2"), Ok(vec![0, 1, 2, 3, 4, 5]));
    assert_eq!(parse_array_indices("7"), Ok(vec![7]));
    for bad in ["", "5-3", "1-3:0", "a", "1-", "1%x", "1,,2"] {
        assert!(parse_array_indices(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn states() {
    assert_eq!(
        parse_state("CANCELLED by 0"),
        (JobState::Cancelled, Some(0))
    );
    assert_eq!(parse_state("CANCELLED"), (JobState::Cancelled, None));
    assert_eq!(parse_state("OUT_OF_MEMORY").0, JobState::OutOfMemory);
    assert_eq!(parse_state("NODE_FAIL").0, JobState::NodeFail);
    assert_eq!(parse_state("PREEMPTED").0, JobState::Preempted);
    assert_eq!(parse_state("BOOT_FAIL").0, JobState::BootFail);
    assert_eq!(parse_state("TIMEOUT").0, JobState::Timeout);
    assert_eq!(parse_state("FAILED").0, JobState::Failed);
    assert_eq!(parse_state("COMPLETED").0, JobState::Completed);
    assert_eq!(parse_state("COMPLETING").0, JobState::Completing);
    assert_eq!(parse_state("PD").0, JobState::Pending);
    assert_eq!(parse_state("REQUEUED").0, JobState::Requeued);
    assert_eq!(
        parse_state("RESV_DEL_HOLD").0,
        JobState::Other("RESV_DEL_HOLD".into())
    );
    assert!(JobState::Timeout.is_terminal());
    assert!(!JobState::Completing.is_terminal());
    assert!(!JobState::Requeued.is_terminal());
    assert!(JobState::NodeFail.is_infrastructure_failure());
    assert_eq!(JobState::OutOfMemory.to_string(), "OUT_OF_MEMORY");
}

#[test]
fn small_formats() {
    assert_eq!(parse_exit_code("0:9"), Ok((0, 9)));
    assert_eq!(parse_exit_code("42:0"), Ok((42, 0)));
    assert!(parse_exit_code("42").is_err());
    assert_eq!(parse_duration_secs("00:01:11"), Ok(71));
    assert_eq!(parse_duration_secs("1-02:03:04"), Ok(93_784));
    assert_eq!(parse_duration_secs("01:02"), Ok(62));
    assert_eq!(parse_duration_secs("00:00.123"), Ok(0));
    assert!(parse_duration_secs("UNLIMITED").is_err());
    assert_eq!(parse_mem_bytes(""), Ok(None));
    assert_eq!(parse_mem_bytes("120016896"), Ok(Some(120_016_896)));
    assert_eq!(parse_mem_bytes("117204K"), Ok(Some(120_016_896)));
    assert_eq!(parse_mem_bytes("50M"), Ok(Some(52_428_800)));
    assert_eq!(parse_mem_bytes("1.50G"), Ok(Some(1_610_612_736)));
    assert_eq!(parse_mem_bytes("4000Mn"), Ok(Some(4_194_304_000)));
    assert_eq!(parse_mem_bytes("18446744073709551616.00M"), Ok(None));
    assert!(parse_mem_bytes("12X").is_err());
    assert!(parse_mem_bytes("K").is_err());
}

/// `squeue -r -t all --noheader --format=%i|%T|%r` during `--array=0-5%2`, then without `-r`.
#[test]
fn squeue_array_with_throttle() {
    let out = "3_2|PENDING|JobArrayTaskLimit\n3_3|PENDING|JobArrayTaskLimit\n3_4|PENDING|JobArrayTaskLimit\n3_5|PENDING|JobArrayTaskLimit\n3_0|RUNNING|None\n3_1|RUNNING|None\n";
    let rows = parse_squeue(out).unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows[0],
        QueueEntry {
            job: JobKey::task(3, 2),
            state: JobState::Pending,
            reason: Some("JobArrayTaskLimit".into())
        }
    );
    assert_eq!(rows[4].state, JobState::Running);
    assert_eq!(rows[4].reason, None);

    let no_r = "3_[2-5%2]|PENDING|JobArrayTaskLimit\n3_0|RUNNING|None\n3_1|RUNNING|None\n";
    let rows2 = parse_squeue(no_r).unwrap();
    assert_eq!(rows2, rows);
}

/// Dependencies: afterok on a running parent, and on a parent that failed.
#[test]
fn squeue_dependencies_and_final_states() {
    let out = "12|FAILED|NonZeroExitCode\n11|PENDING|Dependency\n13|PENDING|DependencyNeverSatisfied\n10|RUNNING|None\n";
    let rows = parse_squeue(out).unwrap();
    assert_eq!(rows[0].state, JobState::Failed);
    assert_eq!(rows[2].reason.as_deref(), Some("DependencyNeverSatisfied"));
    // -t all shows jobs that ended < MinJobAge ago; OOM and TIMEOUT as seen by squeue:
    let ended =
        "22|FAILED|JobLaunchFailure\n23|TIMEOUT|TimeLimit\n13|CANCELLED|DependencyNeverSatisfied\n";
    let rows = parse_squeue(ended).unwrap();
    assert_eq!(rows[1].state, JobState::Timeout);
    assert_eq!(rows[2].state, JobState::Cancelled);
    assert_eq!(parse_squeue(""), Ok(vec![]));
    assert!(matches!(
        parse_squeue("12 FAILED"),
        Err(ParseError::FieldCount { found: 1, .. })
    ));
    // The reason is the last field and may contain anything.
    let odd = parse_squeue("5|PENDING|ReqNodeNotAvail, UnavailableNodes:vm|x\n").unwrap();
    assert_eq!(
        odd[0].reason.as_deref(),
        Some("ReqNodeNotAvail, UnavailableNodes:vm|x")
    );
}

fn rec(out: &[AccountingRecord], job: JobKey) -> &AccountingRecord {
    out.iter().find(|r| r.job == job).unwrap()
}

/// `sacct --parsable2 --noheader --noconvert --format=JobID,State,ExitCode,Elapsed,MaxRSS,ReqMem`
#[test]
fn sacct_oom_timeout_cancel_fail() {
    // OOM via OverMemoryKill (--mem=50, 300 MB allocated).
    let oom = "22|FAILED|0:9|00:00:02||50M\n22.batch|CANCELLED by 0|0:9|00:00:02|329871360|\n";
    let r = parse_sacct(oom).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0],
        AccountingRecord {
            job: JobKey::job(22),
            state: JobState::Failed,
            cancelled_by: None,
            exit_code: 0,
            signal: 9,
            elapsed_secs: 2,
            max_rss_bytes: Some(329_871_360),
            req_mem_bytes: Some(52_428_800),
        }
    );

    // TIMEOUT: the job line says 0:0, the batch step has the signal.
    let timeout = "23|TIMEOUT|0:0|00:01:11||1024M\n23.batch|CANCELLED|0:9|00:01:16|3366912|\n33|TIMEOUT|0:0|00:01:02||1024M\n33.batch|CANCELLED|0:15|00:01:02|3309568|\n";
    let r = parse_sacct(timeout).unwrap();
    assert_eq!(r[0].state, JobState::Timeout);
    assert_eq!((r[0].exit_code, r[0].signal, r[0].elapsed_secs), (0, 9, 71));
    assert_eq!((r[1].exit_code, r[1].signal), (0, 15));

    // scancel of a running job and of a throttled array (pending tasks as one range line).
    let cancel = "34|CANCELLED by 0|0:0|00:00:02||1024M\n34.batch|CANCELLED|0:15|00:00:02|3276800|\n35_0|CANCELLED by 0|0:0|00:00:02||1024M\n35_0.batch|CANCELLED|0:15|00:00:02|3272704|\n35_[1-9%2]|CANCELLED by 0|0:0|00:00:00||1024M\n";
    let r = parse_sacct(cancel).unwrap();
    assert_eq!(r.len(), 11);
    assert_eq!(rec(&r, JobKey::job(34)).cancelled_by, Some(0));
    assert_eq!(rec(&r, JobKey::job(34)).signal, 15);
    assert_eq!(rec(&r, JobKey::task(35, 0)).max_rss_bytes, Some(3_272_704));
    let t9 = rec(&r, JobKey::task(35, 9));
    assert_eq!(
        (t9.state.clone(), t9.max_rss_bytes),
        (JobState::Cancelled, None)
    );

    // Exit codes and a self-inflicted SIGKILL (indistinguishable from OOM in sacct).
    // A line in another format (5 fields) is an error, not a silent misparse.
    assert!(matches!(
        parse_sacct("37|FAILED|11:0|00:00:00|\n"),
        Err(ParseError::FieldCount { found: 5, .. })
    ));
    let fails = "37|FAILED|11:0|00:00:00||1024M\n37.batch|FAILED|11:0|00:00:00||\n38|FAILED|42:0|00:00:00||1024M\n38.batch|FAILED|42:0|00:00:00||\n39|FAILED|0:9|00:00:00||1024M\n39.batch|CANCELLED|0:9|00:00:00||\n";
    let r = parse_sacct(fails).unwrap();
    assert_eq!((r[1].exit_code, r[1].signal), (42, 0));
    assert_eq!((r[2].state.clone(), r[2].signal), (JobState::Failed, 9));
}

/// A completed array `--array=0-5%2` and, while it ran, the lagging view (`3_[2-5%2]` pending,
/// steps RUNNING without MaxRSS).
#[test]
fn sacct_array_and_running() {
    let running = "3_0|RUNNING|0:0|00:00:03||1024M\n3_0.batch|RUNNING|0:0|00:00:03||\n3_1|RUNNING|0:0|00:00:03||1024M\n3_1.batch|RUNNING|0:0|00:00:03||\n3_[2-5%2]|PENDING|0:0|00:00:00||1024M\n";
    let r = parse_sacct(running).unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(rec(&r, JobKey::task(3, 5)).state, JobState::Pending);

    let done = "3_0|COMPLETED|0:0|00:00:04||1024M\n3_0.batch|COMPLETED|0:0|00:00:04|3383296|\n3_1|COMPLETED|0:0|00:00:04||1024M\n3_1.batch|COMPLETED|0:0|00:00:04|3313664|\n29_2|FAILED|2:0|00:00:00||100M\n29_2.batch|FAILED|2:0|00:00:00||\n";
    let r = parse_sacct(done).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(rec(&r, JobKey::task(3, 1)).max_rss_bytes, Some(3_313_664));
    assert_eq!(rec(&r, JobKey::task(29, 2)).exit_code, 2);

    // The transient garbage ReqMem of a job accounting has not caught up with.
    let lag =
        "34|PENDING|0:0|00:00:02||18446744073709551616.00M\n34.batch|RUNNING|0:0|00:00:02||\n";
    let r = parse_sacct(lag).unwrap();
    assert_eq!(r[0].req_mem_bytes, None);

    // A step with MaxRSS and an extern step: the max wins; steps before their job line work.
    let steps = "7.extern|COMPLETED|0:0|00:00:05|1000|\n7|COMPLETED|0:0|00:00:05||1G\n7.batch|COMPLETED|0:0|00:00:05|5000|\n7.0|COMPLETED|0:0|00:00:04|3000|\n8+0|COMPLETED|0:0|00:00:01||1G\n";
    let r = parse_sacct(steps).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].max_rss_bytes, Some(5000));
}

/// slurmd killed under a running job: after ~90 s the node is `down*` and the job NODE_FAIL,
/// then SLURM requeues it (Requeue=1 by default) under the same id. Without --duplicates sacct
/// shows only the newest instance (here cancelled while requeued); with it, both.
#[test]
fn sacct_node_fail_and_requeue() {
    let dup = "49|NODE_FAIL|0:0|00:01:33||1024M\n49.batch|CANCELLED||00:01:33||\n49|CANCELLED by 0|0:0|00:00:00||1024M\n";
    let r = parse_sacct(dup).unwrap();
    assert_eq!(r.len(), 1); // the later instance wins
    assert_eq!(r[0].state, JobState::Cancelled);
    let nf = "49|NODE_FAIL|0:0|00:01:33||1024M\n49.batch|CANCELLED||00:01:33||\n";
    let r = parse_sacct(nf).unwrap();
    assert_eq!(
        (r[0].state.clone(), r[0].signal, r[0].elapsed_secs),
        (JobState::NodeFail, 0, 93)
    );
    assert!(r[0].state.is_infrastructure_failure());
    let q = parse_squeue("49|PENDING|BeginTime\n").unwrap();
    assert_eq!(q[0].state, JobState::Pending);
}

const SCONTROL_FAILED: &str = "JobId=12 JobName=failparent
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901753 Nice=0 Account=root QOS=normal
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-11-29T14:04:22 EligibleTime=2026-11-29T14:04:22
   AccrueTime=2026-11-29T14:04:22
   StartTime=2026-11-29T14:04:22 EndTime=2026-11-29T14:04:23 Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-29T14:04:22 Scheduler=Main
   Partition=debug AllocNode:Sid=localhost:2371
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=vm
   BatchHost=vm
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,mem=1G,node=1,billing=1
   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*
   MinCPUsNode=1 MinMemoryCPU=1G MinTmpDiskNode=0
   Features=(null) DelayBoot=00:00:00
   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)
   Command=(null)
   WorkDir=/work/scratch/jobs
   StdErr=/work/scratch/jobs/dep-12.out
   StdIn=/dev/null
   StdOut=/work/scratch/jobs/dep-12.out
   Power=
   

";

#[test]
fn scontrol_records() {
    let r = parse_scontrol_show_job(SCONTROL_FAILED).unwrap();
    assert_eq!(
        r,
        vec![ControlRecord {
            job: JobKey::job(12),
            state: JobState::Failed,
            reason: Some("NonZeroExitCode".into()),
            exit_code: 3,
            signal: 0,
            run_time_secs: Some(1),
        }]
    );

    // OOM and TIMEOUT as scontrol reports them (sacct's TIMEOUT job line says 0:0 instead).
    let oom = "JobId=22 JobName=oom\n   JobState=FAILED Reason=JobLaunchFailure Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9\n   RunTime=00:00:02 TimeLimit=365-00:00:00 TimeMin=N/A\n";
    let r = parse_scontrol_show_job(oom).unwrap();
    assert_eq!((r[0].state.clone(), r[0].signal), (JobState::Failed, 9));
    let timeout = "JobId=23 JobName=tmo\n   JobState=TIMEOUT Reason=TimeLimit Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9\n   RunTime=00:01:11 TimeLimit=00:01:00 TimeMin=N/A\n";
    let r = parse_scontrol_show_job(timeout).unwrap();
    assert_eq!(
        (r[0].state.clone(), r[0].run_time_secs),
        (JobState::Timeout, Some(71))
    );

    // A pending throttled array: one record for the range, expanded; plus a running task.
    let array = "JobId=35 ArrayJobId=35 ArrayTaskId=1-9%2 ArrayTaskThrottle=2 JobName=arrc\n   UserId=root(0) GroupId=root(0) MCS_label=N/A\n   JobState=PENDING Reason=Resources Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A\n\nJobId=36 ArrayJobId=35 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=arrc\n   JobState=RUNNING Reason=None Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n   RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A\n";
    let r = parse_scontrol_show_job(array).unwrap();
    assert_eq!(r.len(), 10);
    assert_eq!(r[0].job, JobKey::task(35, 1));
    assert_eq!(r[0].reason.as_deref(), Some("Resources"));
    assert_eq!(r[9].job, JobKey::task(35, 0));
    assert_eq!(
        (r[9].state.clone(), r[9].reason.clone()),
        (JobState::Running, None)
    );

    // Captured: a job named with sbatch's quoting of `a"b$HOME`c;d'e`, and one faking fields.
    let named = "JobId=27 JobName=a\"b$HOME`c;d'e JobState=COMPLETED x=1\n   UserId=root(0) GroupId=root(0) MCS_label=N/A\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=1:0\n";
    let r = parse_scontrol_show_job(named).unwrap();
    assert_eq!(
        (r[0].job, r[0].state.clone(), r[0].exit_code),
        (JobKey::job(27), JobState::Failed, 1)
    );

    // One-line mode and a job name that tries to fake fields.
    let one = "JobId=50 JobName=x JobState=COMPLETED ExitCode=0:0 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=root QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:05 TimeLimit=UNLIMITED\n";
    let r = parse_scontrol_show_job(one).unwrap();
    assert_eq!(
        (r[0].job, r[0].state.clone()),
        (JobKey::job(50), JobState::Running)
    );

    assert!(matches!(
        parse_scontrol_show_job("JobId=5 JobName=x\n   Reason=None\n"),
        Err(ParseError::MissingField {
            field: "JobState",
            ..
        })
    ));
    assert_eq!(parse_scontrol_show_job(""), Ok(vec![]));
}

#[test]
fn oom_detection() {
    let log = "slurmstepd-vm: error: StepId=22.batch exceeded memory limit (329871360 > 52428800), being killed\nslurmstepd-vm: error: *** JOB 22 ON vm CANCELLED AT 2026-11-29T14:04:40 ***\nslurmstepd-vm: error: StepId=22.batch exceeded memory limit (329871360 > 52428800), being killed\nslurmstepd-vm: error: Exceeded job memory limit\n";
    assert!(is_oom_kill(&JobState::Failed, 9, Some(log)));
    assert!(is_oom_kill(&JobState::Cancelled, 9, Some(log)));
    // kill -9 from elsewhere: same state and signal, no SLURM message.
    assert!(!is_oom_kill(&JobState::Failed, 9, Some("Killed\n")));
    assert!(!is_oom_kill(&JobState::Failed, 9, None));
    // cgroup clusters.
    assert!(is_oom_kill(&JobState::OutOfMemory, 0, None));
    let cg = "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=123.batch. Some of your processes may have been killed by the cgroup out-of-memory handler.\n";
    assert!(is_oom_kill(&JobState::Failed, 0, Some(cg)));
    // Ended otherwise.
    assert!(!is_oom_kill(&JobState::Completed, 0, Some(cg)));
    let tlog = "slurmstepd-vm: error: *** JOB 23 ON vm CANCELLED AT 2026-11-29T14:05:59 DUE TO TIME LIMIT ***\n";
    assert!(!is_oom_kill(&JobState::Timeout, 9, Some(tlog)));
    assert!(!is_oom_kill(&JobState::Failed, 0, Some(tlog)));
}
