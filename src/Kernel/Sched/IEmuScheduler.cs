namespace DistEmu.Kernel.Sched;

/// <summary>
/// The engine port: how an emulated task yields and is resumed. The kernel core never runs threads or reads
/// the wall clock; it only advances a task's emulated clock and asks the engine to resume it.
/// The sim engine orders every resumption by emulated time; the orleans engine resumes on the grain's scheduler.
/// </summary>
public interface IEmuScheduler
{
    /// <summary>True if some other event must run before a task whose clock is <paramref name="clock"/> may go on.</summary>
    bool MustYield(long clock);

    /// <summary>Run <paramref name="continuation"/> for <paramref name="task"/> at emulated time <paramref name="at"/>.</summary>
    void Resume(EmuTask task, long at, Action continuation);

    /// <summary>Extra emulated delay to inject at a preemption point (0 = none); how schedules are explored.</summary>
    long PreemptionDelay(EmuTask task, PreemptSite site);
}

/// <summary>
/// Places in the protocol where a real kernel task can be preempted or delayed, and where the order against other
/// CPUs decides the outcome. The sim engine's schedule exploration injects delays here.
/// </summary>
public enum PreemptSite
{
    /// <summary>Between the RCU lookup of the VMA tree and vma_start_read.</summary>
    LookupToVmaStartRead,
    /// <summary>Between dropping the fault lock and pte_offset_map_lock in migration_entry_wait (v2/v3 window).</summary>
    UnlockToPteMapLock,
    /// <summary>Before a fault starts handling the entry it read.</summary>
    HandleMmFaultEntry,
    /// <summary>In a writer between taking mmap_lock for write and write-locking the VMAs.</summary>
    WriterAfterMmapWriteLock,
    /// <summary>In the migrator between unmapping and copying.</summary>
    MigrateBeforeCopy,
}
