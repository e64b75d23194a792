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
    public static async ValueTask Execute(EmuTask t, Op op, IReadOnlyList<FileObject> files, TaskBarrier barrier, TaskCounters c)
    {
        var mm = t.Mm!;
        long page = t.Machine.Spec.PageSize;
        long Len() => Math.Max(page, (op.Length + page - 1) / page * page);
        c.Ops++;
        switch (op.Kind)
        {
            case OpKind.Read:
            case OpKind.Write:
                c.Accesses++;
                var outcome = await CpuAccess.Access(t, op.Addr, op.Kind == OpKind.Write);
                if (outcome == FaultOutcome.Sigsegv) c.Sigsegv++;
                else if (outcome == FaultOutcome.Sigbus) c.Sigbus++;
                break;
            case OpKind.Mmap:
                var file = op.FileId >= 0 ? files[op.FileId] : null;
                await Mmap.DoMmap(t, mm, t.Machine.PageAlign(op.Addr), Len(), op.Prot, file, 0);
                break;
            case OpKind.Munmap:
                await Munmap.DoMunmap(t, mm, t.Machine.PageAlign(op.Addr), t.Machine.PageAlign(op.Addr) + Len());
                break;
            case OpKind.Mprotect:
                await Mprotect.DoMprotect(t, mm, t.Machine.PageAlign(op.Addr), t.Machine.PageAlign(op.Addr) + Len(), op.Prot);
                break;
            case OpKind.Migrate:
                await t.Delay(t.Machine.Cost.SyscallNs);
                await MovePages.MigrateRange(t, mm, t.Machine.PageAlign(op.Addr), t.Machine.PageAlign(op.Addr) + Len(), op.Node);
                break;
            case OpKind.NumaScan:
                await NumaScan.ChangeProtNuma(t, mm, t.Machine.PageAlign(op.Addr), t.Machine.PageAlign(op.Addr) + Len());
                break;
            case OpKind.PageOut:
                await t.Delay(t.Machine.Cost.SyscallNs);
                await PageOut.MadvisePageout(t, mm, t.Machine.PageAlign(op.Addr), t.Machine.PageAlign(op.Addr) + Len());
                break;
            case OpKind.Compute:
                await t.Delay(op.Ns);
                break;
            case OpKind.Barrier:
                await barrier.Arrive(t);
                break;
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
