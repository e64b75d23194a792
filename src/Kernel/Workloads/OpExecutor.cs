using System.Runtime.CompilerServices;
using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Workloads;

/// <summary>Per-task results of running an op stream.</summary>
public sealed class TaskCounters
{
    public long Ops;
    public long Accesses;
    public long Sigsegv;
    public long Sigbus;
}

/// <summary>Runs one op of a task's stream against the kernel core: the system-call and access layer.</summary>
public static class OpExecutor
{
    /// <summary>
    /// One op: an access goes straight to <see cref="CountedAccess"/> (its ValueTask is this one's: no frame of its own
    /// to suspend at the fault path's yields); think time, the barrier and system calls run here.
    /// </summary>
    public static ValueTask Execute(EmuTask t, Op op, IReadOnlyList<FileObject> files, TaskBarrier barrier, TaskCounters c)
    {
        c.Ops++;
        return op.Kind is OpKind.Read or OpKind.Write ? CountedAccess(t, op, c) : ExecuteOther(t, op, files, barrier);
    }

    /// <summary>A load or store through the fault loop, its signal counted in the task's counters (both engines).</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    public static async ValueTask CountedAccess(EmuTask t, Op op, TaskCounters c)
    {
        c.Accesses++;
        var outcome = await CpuAccess.Access(t, op.Addr, op.Kind == OpKind.Write);
        if (outcome == FaultOutcome.Sigsegv) c.Sigsegv++;
        else if (outcome == FaultOutcome.Sigbus) c.Sigbus++;
    }

    private static async ValueTask ExecuteOther(EmuTask t, Op op, IReadOnlyList<FileObject> files, TaskBarrier barrier)
    {
        switch (op.Kind)
        {
            case OpKind.Compute:
                await t.Delay(op.Ns);
                break;
            case OpKind.Barrier:
                await barrier.Arrive(t);
                break;
            default:
                await ExecuteSyscall(t, t.Mm!, op, files);
                break;
        }
    }

    /// <summary>
    /// The system calls of an op stream, run where the mm is (the sim engine's task, or the mm grain on behalf of a CPU):
    /// mmap, munmap, mprotect, move_pages, NUMA scanning and MADV_PAGEOUT.
    /// </summary>
    /// <param name="pgoff">File offset of an mmap, in pages (a replayed trace's MMAP2 offset; workloads map from 0).</param>
    public static async ValueTask ExecuteSyscall(EmuTask t, MmStruct mm, Op op, IReadOnlyList<FileObject> files, long pgoff = 0)
    {
        var m = t.Machine;
        long page = m.Spec.PageSize;
        long start = m.PageAlign(op.Addr);
        long end = start + Math.Max(page, (op.Length + page - 1) / page * page);
        switch (op.Kind)
        {
            case OpKind.Mmap:
                var file = op.FileId >= 0 ? files[op.FileId] : null;
                await Mmap.DoMmap(t, mm, start, end - start, op.Prot, file, pgoff);
                break;
            case OpKind.Munmap:
                await Munmap.DoMunmap(t, mm, start, end);
                break;
            case OpKind.Mprotect:
                await Mprotect.DoMprotect(t, mm, start, end, op.Prot);
                break;
            case OpKind.Migrate:
                await t.Delay(m.Cost.SyscallNs);
                await MovePages.MigrateRange(t, mm, start, end, op.Node);
                break;
            case OpKind.NumaScan:
                await NumaScan.ChangeProtNuma(t, mm, start, end);
                break;
            case OpKind.PageOut:
                await t.Delay(m.Cost.SyscallNs);
                await PageOut.MadvisePageout(t, mm, start, end);
                break;
            case OpKind.Fork:
                await Fork.ForkAndExit(t, mm);
                break;
            default:
                throw new ArgumentException($"{op.Kind} is not a system call", nameof(op));
        }
    }
}

/// <summary>pthread_barrier_wait over emulated time: everyone leaves at the last arrival's time.</summary>
public sealed class TaskBarrier : Locking.IWaitTarget
{
    private readonly List<EmuTask> _waiting = new();
    private int _parties;

    public TaskBarrier(int parties) => _parties = parties;

    /// <summary>A task that finished its stream no longer counts as a party.</summary>
    public void Leave()
    {
        _parties--;
        if (_waiting.Count > 0 && _waiting.Count >= _parties) Release(_waiting.Max(w => w.Clock));
    }

    public Locking.SleepAwaitable Arrive(EmuTask t)
    {
        if (_waiting.Count + 1 >= _parties)
        {
            Release(t.Clock);
            return default;
        }
        _waiting.Add(t);
        t.WaitingOn = this;
        return new Locking.SleepAwaitable(t.Waiter.Arm());
    }

    private void Release(long at)
    {
        var ws = _waiting.ToArray();
        _waiting.Clear();
        foreach (var w in ws) w.Waiter.Wake(at);
    }

    public string Describe() => "barrier";
    public void AddHolders(List<EmuTask> into) { }
}
