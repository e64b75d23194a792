namespace DistEmu.Kernel.Sched;

/// <summary>
/// The engine port: how an emulated task yields and is resumed. The kernel core never runs threads or reads
/// the wall clock; it only advances a task's emulated clock and asks the engine to resume it.
/// The sim engine orders every resumption by emulated time; the orleans engine resumes on the grain's scheduler.
/// </summary>
public interface IEmuScheduler
{
    /// <summary>
    /// True if something else must happen before <paramref name="task"/> may go on at its clock (time order, or a skew
    /// bound). <paramref name="exact"/>: what follows touches state whose order between any two tasks decides results,
    /// so an engine that lets tasks run ahead of each other (the sim engine's run-ahead) must not here.
    /// </summary>
    bool MustYield(EmuTask task, bool exact);

    /// <summary>Run <paramref name="continuation"/> for <paramref name="task"/>, which yielded, at emulated time <paramref name="at"/>.</summary>
    void Resume(EmuTask task, long at, Action continuation);

    /// <summary><paramref name="task"/> is about to sleep (a lock, a folio): it no longer holds back anyone's time.</summary>
    void Sleeping(EmuTask task);

    /// <summary>
    /// <paramref name="task"/> was woken at emulated time <paramref name="at"/>; run <paramref name="continuation"/>
    /// (null if the task has not suspended yet: it will find itself woken).
    /// </summary>
    void Woken(EmuTask task, long at, Action? continuation);

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
