using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// The orleans engine's side of the kernel's engine port. CPUs run lax (Graphite's term): a task never yields to
/// others for time order; a task woken from a lock or folio wait resumes as a new turn of the grain that owns the
/// lock (never inline in the waker's turn), at the emulated time the kernel core computed.
/// </summary>
public sealed class GrainScheduler : IEmuScheduler
{
    private readonly TaskScheduler _activation;

    /// <summary>Call during activation: captures the activation's task scheduler.</summary>
    public GrainScheduler() => _activation = TaskScheduler.Current;

    public bool MustYield(long clock) => false;

    public void Resume(EmuTask task, long at, Action continuation) =>
        _ = Task.Factory.StartNew(continuation, CancellationToken.None, TaskCreationOptions.None, _activation);

    public long PreemptionDelay(EmuTask task, PreemptSite site) => 0;
}
