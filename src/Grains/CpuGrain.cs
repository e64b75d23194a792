using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// An emulated CPU running one task: its clock, software TLB, per-CPU page list and RCU snapshot of the VMA tree,
/// and the arch fault loop (the kernel's do_user_addr_fault, unchanged) over the grain address-space port. Its op
/// stream runs as a background loop on the grain's scheduler, so shootdown IPIs interleave with it.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class CpuGrain(RunCatalog runs) : Grain, ICpuGrain
{
    private KernelHost _host = null!;
    private EmuTask? _task;
    private GrainAddressSpace? _aspace;
    private IMmGrain? _mm;
    private readonly TaskCounters _counters = new();
    private int _cpu;
    private bool _stop;
    private INumaNodeGrain _node = null!;
    /// <summary>When this CPU last told its node how far it got (a Stopwatch timestamp).</summary>
    private long _reported;

    /// <summary>How often, at most, a CPU reports its progress to its node while it runs (checked every 64 ops).</summary>
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        string key = this.GetPrimaryKeyString();
        _host = await KernelHost.For(runs, GrainFactory, key);
        _cpu = int.Parse(key[(key.LastIndexOf("/cpu", StringComparison.Ordinal) + 4)..], System.Globalization.CultureInfo.InvariantCulture);
        _node = GrainFactory.GetGrain<INumaNodeGrain>(GrainKeys.Node(_host.Config.RunId, _host.Spec.NodeOfCpu(_cpu)));
    }

    public Task Start(int taskIndex, int mmId)
    {
        Attach(taskIndex, mmId);
        _ = RunLoop(taskIndex);
        return Task.CompletedTask;
    }

    public Task Attach(int taskIndex, int mmId)
    {
        var spec = _host.Spec;
        _aspace = new GrainAddressSpace(GrainFactory, _host.Config.RunId, mmId);
        _task = new EmuTask(_host.Machine, taskIndex, $"cpu{_cpu}", _cpu, spec.NodeOfCpu(_cpu), _host.Scheduler)
        {
            AddressSpace = _aspace,
            Horizon = _host.Scheduler.Bounded ? 0 : long.MaxValue,
            HorizonRank = _host.Scheduler.Bounded ? -1 : int.MaxValue,
            TieRank = taskIndex,
        };
        _mm = GrainFactory.GetGrain<IMmGrain>(GrainKeys.Mm(_host.Config.RunId, mmId));
        return Task.CompletedTask;
    }

    /// <summary>
    /// A replay's batch. Before its first access or system call the task waits (its clock jumps) to
    /// <paramref name="notBeforeNs"/>: the trace order the client keeps between threads, as the sim engine's gate does,
    /// where think time (Compute) runs before the wait and overlaps it. Not reentrant with itself: the client sends a CPU
    /// its next batch only after this one returned.
    /// </summary>
    public async Task<long> RunBatch(OpMessage[] ops, long notBeforeNs)
    {
        var t = _task ?? throw new InvalidOperationException($"cpu{_cpu}: RunBatch before Attach");
        var machine = GrainFactory.GetGrain<IMachineGrain>(_host.Config.RunId);
        bool waited = false;
        foreach (var m in ops)
        {
            if (_stop) break;
            var op = OpMessages.To(m);
            if (!waited && op.Kind != OpKind.Compute)
            {
                t.ReturnedAt(notBeforeNs);
                waited = true;
            }
            await Execute(t, op, m.PgOff, machine);
        }
        _ = Report(t, done: false);
        return t.Clock;
    }

    public async Task Detach()
    {
        var t = _task ?? throw new InvalidOperationException($"cpu{_cpu}: Detach before Attach");
        await Finish(t, GrainFactory.GetGrain<IMachineGrain>(_host.Config.RunId), null);
    }

    private async Task RunLoop(int taskIndex)
    {
        var cfg = _host.Config;
        var t = _task!;
        var machine = GrainFactory.GetGrain<IMachineGrain>(cfg.RunId);
        string? error = null;
        try
        {
            var workload = Workloads.Create(cfg.Workload, cfg.Params);
            var ctx = new WorkloadContext(_host.Spec, cfg.Tasks, cfg.Seed);
            long limit = cfg.EmulatedNsLimit > 0 ? cfg.EmulatedNsLimit : long.MaxValue;
            var stream = cfg.Script is { } script
                ? (script.GetValueOrDefault(taskIndex) ?? []).Select(OpMessages.To)
                : workload.OpsFor(ctx, taskIndex, _cpu);
            using var ops = stream.GetEnumerator();
            if (_host.Scheduler.Bounded)
            {
                // Under a quantum the stream is read ahead, so the time keepers can let this CPU run past the quantum
                // while its run touches nothing another CPU's does. As many ops per CPU as the sim engine reads ahead.
                var lookahead = new CpuLookahead(t, _aspace!, ops, CpuLookahead.WindowOps(cfg.Tasks), cfg.OpsPerTask);
                _host.Scheduler.Lookahead = lookahead;
                while (!_stop && _counters.Ops < cfg.OpsPerTask && t.Clock < limit && await lookahead.MoveNext())
                    await Execute(t, lookahead.Current, 0, machine);
            }
            else
            {
                while (!_stop && _counters.Ops < cfg.OpsPerTask && t.Clock < limit && ops.MoveNext())
                    await Execute(t, ops.Current, 0, machine);
            }
        }
        catch (Exception e)
        {
            error = $"cpu{_cpu}: {e.GetType().Name}: {e.Message}";
        }
        await Finish(t, machine, error);
    }

    /// <summary>One op of the task's stream: an access through the fault loop, think time, the barrier, or a system call in the mm grain.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask Execute(EmuTask t, Op op, long pgoff, IMachineGrain machine)
    {
        _counters.Ops++;
        switch (op.Kind)
        {
            case OpKind.Read:
            case OpKind.Write:
                await OpExecutor.CountedAccess(t, op, _counters);
                break;
            case OpKind.Compute:
                await t.Delay(op.Ns);
                break;
            case OpKind.Barrier:
                await Barrier(t, machine);
                break;
            default:
                var msg = OpMessages.From(op);
                msg.PgOff = pgoff;
                t.ReturnedAt(await _mm!.Syscall(KernelHost.CallerOf(t), msg));
                _aspace!.TreeChanged();
                break;
        }
        if ((_counters.Ops & 63) == 0 && System.Diagnostics.Stopwatch.GetElapsedTime(_reported) >= ReportEvery)
            _ = Report(t, done: false);
        await _host.FlushSpans();
    }

    /// <summary>The barrier: the CPU sleeps until every task has arrived (a method of its own: its lambda's closure would otherwise be made for every op).</summary>
    private Task<long> Barrier(EmuTask t, IMachineGrain machine)
    {
        long arrived = t.Clock;
        return _host.Scheduler.SleepWhile(t, () => machine.ArriveBarrier(_cpu, arrived));
    }

    /// <summary>
    /// Tells this CPU's node how far its task got: ops begun, entries into the fault handler (counted here, where
    /// do_user_addr_fault runs) and clock. To the node and not the machine, so thousands of CPUs never report to one
    /// grain; not awaited while the task runs.
    /// </summary>
    private Task Report(EmuTask t, bool done)
    {
        _reported = System.Diagnostics.Stopwatch.GetTimestamp();
        return _node.Progress(_cpu, _counters.Ops, _host.Machine.VmStat.Faults, t.Clock, done);
    }

    /// <summary>The task's end: take back a speculative frame, drain the per-CPU list, and tell the time keeper and the machine.</summary>
    private async Task Finish(EmuTask t, IMachineGrain machine, string? error)
    {
        _aspace!.DropPending(t);
        t.Pcp.Drain(_host.Machine);
        await _host.Frames.Flush();
        await Report(t, done: true);
        await _host.DrainSpans(); // the task's traces are all at the writer once the machine counts it done
        if (_host.Scheduler.Bounded)
            await GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(_host.Config.RunId, _host.Spec.NodeOfCpu(_cpu))).Done(_cpu);
        await machine.TaskDone(_cpu, error);
    }

    public Task Stop()
    {
        _stop = true;
        return Task.CompletedTask;
    }

    public Task InvalidateTlb(long startVpn, long endVpn)
    {
        _host.Machine.Tlb(_cpu).InvalidateRange(startVpn, endVpn);
        return Task.CompletedTask;
    }

    public Task<string> Where() => Task.FromResult(GrainContext.Address.SiloAddress?.ToParsableString() ?? "");

    public async Task<StatsMessage> GetStats()
    {
        DelayDeactivation(RunLifetime.Release);
        // Never started here: a fresh activation after the one that ran this CPU was lost with its silo.
        if (_task is null) return StatsCodec.LostWithSilo($"cpu{_cpu}");
        await _host.DrainSpans();
        var msg = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(msg);
        msg.MaxClock = _task?.Clock ?? 0;
        msg.Ops = _counters.Ops;
        msg.Accesses = _counters.Accesses;
        msg.Sigsegv = _counters.Sigsegv;
        msg.Sigbus = _counters.Sigbus;
        return msg;
    }
}
