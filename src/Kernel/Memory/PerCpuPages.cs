using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Memory;

/// <summary>
/// A CPU's per-cpu page list (struct per_cpu_pages): frames of the CPU's own node taken from the node in batches,
/// so that most allocations touch no shared state — and, under the orleans engine, send no message.
/// </summary>
public sealed class PerCpuPages
{
    private readonly long[] _frames;
    private int _count;

    public PerCpuPages(int batch) => _frames = new long[batch];

    public int Count => _count;

    /// <summary>alloc_pages on the local node: pop from the list, refilling it from the node when empty. -1 = OOM.</summary>
    public async ValueTask<long> Alloc(EmuMachine m, EmuTask t)
    {
        await t.Delay(m.Cost.PageAllocNs);
        if (_count == 0)
        {
            await t.Delay(m.Cost.PcpRefillNs);
            _count = m.Nodes[t.Node].AllocBulk(_frames, 0, _frames.Length);
            m.Frames.Free -= _count;
            m.Frames.Pcp += _count;
            if (_count == 0)
                return -1;
        }
        m.Frames.Pcp--;
        m.Frames.InFlight++;
        return _frames[--_count];
    }

    /// <summary>Give every frame back to its node (end of run), so frame accounting closes.</summary>
    public void Drain(EmuMachine m)
    {
        while (_count > 0)
        {
            long f = _frames[--_count];
            m.Nodes[m.NodeOfFrame(f)].Free(f);
            m.Frames.Pcp--;
            m.Frames.Free++;
        }
    }
}
