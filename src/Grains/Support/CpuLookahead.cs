using DistEmu.Abstractions;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Grains.Support;

/// <summary>
/// A CPU grain's lookahead under a quantum: its op stream read ahead (<see cref="OpWindow"/>, as the sim engine's
/// run-ahead reads it), the claim of the run it is in (<see cref="RunClaim"/>, widened on its snapshot of the tree) and
/// its end — the earliest emulated time it could start an op outside the run, or touch anything outside the claim. It
/// tells its node's time keeper with each sync (<see cref="Report"/>); the time keepers clear it to run past the quantum
/// while no other CPU's claim meets its own (<see cref="LookaheadLedger"/>). Leaving the run, or a claim that must
/// grow, takes back at once whatever it was granted: the new claim is not cleared yet.
/// </summary>
public sealed class CpuLookahead
{
    private readonly OpWindow _window;
    private readonly GrainAddressSpace _aspace;
    private readonly long _pmdSize;
    private ClaimUpdate _claim;
    private RunClaim _widened = RunClaim.None;
    private long _end;
    private bool _tainted;

    public EmuTask Task { get; }

    /// <param name="ops">The task's op stream.</param>
    /// <param name="capacity">Ops read ahead at most.</param>
    /// <param name="limit">Ops the task runs at most.</param>
    public CpuLookahead(EmuTask task, GrainAddressSpace aspace, IEnumerator<Op> ops, int capacity, long limit)
    {
        Task = task;
        _aspace = aspace;
        var machine = task.Machine;
        _pmdSize = machine.Spec.PageSize * (long)PtePage.Entries;
        var (access, miss) = RunAhead.MinAccessNs(machine);
        _window = new OpWindow(ops, capacity, limit, access, miss, task.Tlb, machine.Spec.PageShift);
        _claim = new ClaimUpdate { Cpu = task.Cpu, Files = [] };
        Stand();
    }

    /// <summary>The task carries its claim's standing, for the stand-ins that run parts of its ops.</summary>
    private void Stand()
    {
        Task.ClaimVersion = _claim.Version;
        Task.InRun = _claim.InRun;
    }

    public Op Current => _window.Current;

    /// <summary>
    /// Ops a CPU reads ahead in a run of <paramref name="tasks"/> tasks: the further it sees, the later its end and the
    /// further the others may run (each op counts only its least cost). 2,048 (80 KiB) for up to 512 CPUs, fewer above,
    /// about 40 MB for the whole machine (a silo holds only its share of the CPUs).
    /// </summary>
    public static int WindowOps(int tasks) => Math.Clamp(1_048_576 / Math.Max(1, tasks), 256, 2_048);

    /// <summary>The next op, with the claim and end brought up to date before it runs; false at the stream's end.</summary>
    public async ValueTask<bool> MoveNext()
    {
        if (!_window.MoveNext()) return false;
        var w = _window;
        var t = Task;
        if (w.RunLeft == 0)
        {
            if (RunAhead.Taints(w.Current.Kind)) _tainted = true;
            if (_claim.InRun) _claim = new ClaimUpdate { Cpu = t.Cpu, Version = _claim.Version + 1, InRun = false, Files = [] };
            t.Allowed = Math.Max(t.Allowed, Math.Min(t.Clock, t.FreeUntil)); // where its grant took it
            t.FreeUntil = long.MinValue;
            Stand();
            return true;
        }
        if (!_claim.InRun || !_widened.Covers(w.RunLo, w.RunHi))
        {
            // Entering a run, or about to touch past the claim it was cleared for: a new claim, not cleared until the
            // time keepers have seen it.
            t.Allowed = Math.Max(t.Allowed, Math.Min(t.Clock, t.FreeUntil));
            t.FreeUntil = long.MinValue;
            _widened = await _aspace.Claim(t, w.RunLo, w.RunHi, _pmdSize);
            _claim = new ClaimUpdate
            {
                Cpu = t.Cpu,
                Version = _claim.Version + 1,
                InRun = true,
                Lo = _widened.Lo,
                Hi = _widened.Hi,
                Files = _widened.Files,
                Eligible = _widened.Eligible,
            };
            Stand();
        }
        _end = w.RunIsLast ? long.MaxValue : t.Clock + w.RunMinNs;
        return true;
    }

    /// <summary>The standing to send with a sync: the current claim and the end (the clock, outside a run).</summary>
    public LookaheadReport Report() => new() { End = _claim.InRun ? _end : Task.Clock, Claim = _claim, Tainted = _tainted };
}
