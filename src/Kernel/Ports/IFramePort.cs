using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Ports;

/// <summary>
/// Where frames come from and go back to: the NUMA nodes' allocators. Local in the sim engine; under the orleans
/// engine the node grains, reached in batches (per-CPU lists, frees buffered per grain turn). Implementations keep
/// <see cref="FrameAccounting.Free"/> right for the frames they own.
/// </summary>
public interface IFramePort
{
    /// <summary>rmqueue_bulk: up to <paramref name="max"/> frames of <paramref name="node"/> into <paramref name="into"/>; returns how many.</summary>
    ValueTask<int> AllocBulk(EmuTask t, int node, long[] into, int max);

    /// <summary>Give a frame back to its node.</summary>
    void Free(long frame);

    /// <summary>An order-9 block (a THP's 512 frames) of <paramref name="node"/>: its head frame, or -1 if the node has none.</summary>
    ValueTask<long> AllocHuge(EmuTask t, int node);

    /// <summary>Give a THP's block back to its node whole.</summary>
    void FreeHuge(long head);

    /// <summary>
    /// Whether the order in which CPUs refill from <paramref name="node"/>'s free list can change more than which frames
    /// each gets: a refill is an exact sync point while it can (see PerCpuPages). The sim engine keeps even frame
    /// identities exact (its event log names them), so for it always; an engine that cannot tell says true.
    /// </summary>
    bool RefillOrderMatters(int node) => true;
}

/// <summary>The machine's own nodes (sim engine).</summary>
public sealed class LocalFramePort : IFramePort
{
    private readonly EmuMachine _m;

    public LocalFramePort(EmuMachine m) => _m = m;

    public ValueTask<int> AllocBulk(EmuTask t, int node, long[] into, int max)
    {
        int n = _m.Nodes[node].AllocBulk(into, 0, max);
        _m.Frames.Free -= n;
        return ValueTask.FromResult(n);
    }

    public void Free(long frame)
    {
        _m.Nodes[_m.NodeOfFrame(frame)].Free(frame);
        _m.Frames.Free++;
    }

    public ValueTask<long> AllocHuge(EmuTask t, int node)
    {
        long head = _m.Nodes[node].AllocHuge();
        if (head >= 0) _m.Frames.Free -= NumaNode.HugeFrames;
        return ValueTask.FromResult(head);
    }

    public void FreeHuge(long head)
    {
        _m.Nodes[_m.NodeOfFrame(head)].FreeHuge(head);
        _m.Frames.Free += NumaNode.HugeFrames;
    }
}

/// <summary>
/// Where TLB shootdown IPIs go: the CPUs' software TLBs, local or in CPU grains. Like smp_call_function_many with
/// wait=1, it returns once every target has invalidated: a flush that has returned leaves no stale translation.
/// </summary>
public interface ITlbPort
{
    ValueTask Invalidate(IReadOnlyList<int> cpus, long startVpn, long endVpn);
}

public sealed class LocalTlbPort : ITlbPort
{
    private readonly EmuMachine _m;
    public LocalTlbPort(EmuMachine m) => _m = m;

    public ValueTask Invalidate(IReadOnlyList<int> cpus, long startVpn, long endVpn)
    {
        foreach (int cpu in cpus) _m.Tlb(cpu).InvalidateRange(startVpn, endVpn);
        return ValueTask.CompletedTask;
    }
}
