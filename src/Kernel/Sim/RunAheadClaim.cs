namespace DistEmu.Kernel.Sim;

/// <summary>One task's standing in the sim engine's run-ahead: what it may touch, and until when at the earliest.</summary>
internal sealed class RunAheadClaim
{
    /// <summary>Still running its op stream (a finished task touches nothing more).</summary>
    public bool Live = true;
    /// <summary>Its current op is an access or think time: it touches only its run's range until <see cref="End"/>.</summary>
    public bool InRun;
    /// <summary>Addresses its run's ops touch (lowest, highest), as read ahead; Lo &gt; Hi when none.</summary>
    public long RawLo = long.MaxValue, RawHi = long.MinValue;
    /// <summary>
    /// The claim as last checked against the others: the raw range widened to the whole VMAs it meets and to whole
    /// page-table pages (their PTLs and the VMAs' locks are what a fault takes), and the files those VMAs map.
    /// </summary>
    public Sched.RunClaim Widened = Sched.RunClaim.None;
    /// <summary>Earliest emulated time at which the task could start an op outside its run (long.MinValue: now).</summary>
    public long End = long.MinValue;
    /// <summary>At the last check: the claim is eligible and overlaps no other task's.</summary>
    public bool Disjoint;
    /// <summary>The least <see cref="End"/> of the other tasks, as last computed (only ever too low: ends only grow).</summary>
    public long Bound = long.MinValue;
    /// <summary>The run-ahead epoch <see cref="Bound"/> was computed in.</summary>
    public int Epoch = -1;
}
