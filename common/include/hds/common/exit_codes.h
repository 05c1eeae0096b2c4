// The exit codes of hds-trainer, hds-data-service and hds-launch, written once: the launcher
// passes the trainers' code on, the Slurm script requeues on kExitStopped, and the tests check
// them. Plain constants; no dependencies.
#pragma once

namespace hds::common {

constexpr int kExitFinished = 0;
// An error the message explains (a file that cannot be read, a dead peer, a failed launch).
constexpr int kExitError = 1;
// A bad command line or configuration: nothing ran.
constexpr int kExitUsage = 2;
// Training met a NaN or infinite loss; the message names the step, the head and the checkpoint.
constexpr int kExitNonFiniteLoss = 3;
// A rank hung or was lost: the watchdog's report (or mpirun's) names it, or a collective failed.
// Checkpoints are intact; hds-launch --max-restarts starts again from the latest.
constexpr int kExitRankLost = 4;
// Stopped on request (SIGTERM, SIGUSR1) after writing a checkpoint: resume with --resume auto.
// 75 is sysexits' EX_TEMPFAIL: "try again later", what a requeued Slurm job does.
constexpr int kExitStopped = 75;
// A process that a signal ended reports 128 + the signal's number, as a shell does.
constexpr int kExitSignalBase = 128;

// Whether a job that ended with `code` may be started again from its latest checkpoint to mend
// it (hds-launch --max-restarts, the Slurm job): a rank hung or was lost, or a process was
// killed. Not a finished or stopped run, nor an error that would come again (1, 2, 3).
constexpr bool is_restartable(int code) { return code == kExitRankLost || code > kExitSignalBase; }

}  // namespace hds::common
