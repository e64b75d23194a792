using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel;

/// <summary>
/// Optional hooks for telemetry (spans and metrics): the kernel core calls them at protocol points, with emulated
/// times. Nothing in the core depends on what an observer does.
/// </summary>
public interface IKernelObserver
{
    void OnLockAcquired(EmuTask task, IWaitTarget lockObject, LockMode mode, long waitedNs);
    void OnMigrationWait(EmuTask task, long frame, long fromNs, long toNs);
    void OnWriter(EmuTask task, string syscall, long fromNs, long toNs, long waitedNs);
}
