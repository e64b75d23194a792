using DistEmu.Abstractions;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>Frames from the node grains: bulk allocation (a per-CPU list refill) and frees buffered until the grain's turn ends.</summary>
public sealed class GrainFramePort : IFramePort
{
    private readonly IGrainFactory _grains;
    private readonly string _run;
    private readonly EmuMachine _m;
    private readonly Dictionary<int, List<long>> _freed = new();
    private readonly Dictionary<int, long> _freeAfter = new();
    private readonly long _plenty;

    /// <param name="tasks">The run's tasks: with the lookahead window and the batch, how many frames count as plenty.</param>
    /// <param name="hugePages">A fault may take a 2 MiB folio: each op of a window may then take 512 frames.</param>
    public GrainFramePort(IGrainFactory grains, string run, EmuMachine m, int tasks, bool hugePages = false)
    {
        _grains = grains;
        _run = run;
        _m = m;
        _plenty = (long)Math.Max(1, tasks) * (CpuLookahead.WindowOps(tasks) * (hugePages ? Kernel.Mm.PtePage.Entries : 1) + m.Cost.PcpBatch);
    }

    public async ValueTask<int> AllocBulk(EmuTask t, int node, long[] into, int max)
    {
        var got = await _grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(_run, node)).AllocBulk(max);
        Array.Copy(got.Frames, into, got.Frames.Length);
        _freeAfter[node] = got.FreeAfter;
        return got.Frames.Length;
    }

    /// <summary>
    /// Under the orleans engine frame identities are no result (no event log compares them), so the order of refills
    /// matters only when the node could run short: while it had, at this grain's last refill, more frames free than
    /// every CPU of the machine could take in a lookahead window and a batch (<paramref name="node"/>'s free list cannot
    /// run dry however the refills interleave), a refill needs no exact order. Unknown (no refill yet): it matters.
    /// </summary>
    public bool RefillOrderMatters(int node) => !_freeAfter.TryGetValue(node, out long free) || free < _plenty;

    public void Free(long frame)
    {
        int node = _m.NodeOfFrame(frame & ~Kernel.Memory.NumaNode.HugeFreeTag);
        if (!_freed.TryGetValue(node, out var list))
            _freed[node] = list = new List<long>();
        list.Add(frame);
    }

    public async ValueTask<long> AllocHuge(EmuTask t, int node) =>
        await _grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(_run, node)).AllocHuge();

    /// <summary>Buffered with the single frames, tagged as a block (<see cref="Kernel.Memory.NumaNode.HugeFreeTag"/>).</summary>
    public void FreeHuge(long head) => Free(head | Kernel.Memory.NumaNode.HugeFreeTag);

    /// <summary>Send the buffered frees to their nodes.</summary>
    public async Task Flush()
    {
        if (_freed.Count == 0) return;
        var batches = _freed.Select(kv => (kv.Key, kv.Value.ToArray())).ToList();
        _freed.Clear();
        foreach (var (node, frames) in batches)
            await _grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(_run, node)).Free(frames);
    }
}

/// <summary>TLB shootdown IPIs as calls to the CPU grains, sent together and waited for (the acknowledgements).</summary>
public sealed class GrainTlbPort(IGrainFactory grains, string run, MachineSpec spec) : ITlbPort
{
    public async ValueTask Invalidate(IReadOnlyList<int> cpus, long startVpn, long endVpn) =>
        await Task.WhenAll(cpus.Select(cpu => grains.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, spec.NodeOfCpu(cpu), cpu)).InvalidateTlb(startVpn, endVpn)));
}
