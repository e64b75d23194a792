using System.Runtime.CompilerServices;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Memory;

/// <summary>
/// A CPU's per-cpu page list (struct per_cpu_pages): frames of the CPU's own node taken from the node in batches,
/// so that most allocations touch no shared state — and, under the orleans engine, send no message.
/// </summary>
public sealed class PerCpuPages
{
    private long[] _frames;
    private int _count;
    /// <summary>
    /// The emulated cost of a refill made ahead of the allocation that needed it (<see cref="ReserveAhead"/>), not paid
    /// yet: the allocation pays it, where the kernel does (rmqueue_bulk inside alloc_pages, under the fault's lock).
    /// </summary>
    private long _refillDueNs;

    public PerCpuPages(int batch) => _frames = new long[batch];

    public int Count => _count;

    /// <summary>Make sure at least <paramref name="k"/> frames are on the list (refilling from the node), e.g. to send with a request.</summary>
    public async ValueTask Reserve(EmuMachine m, EmuTask t, int k)
    {
        if (_count >= k) return;
        await Refill(m, t);
        await AddBatch(m, t);
    }

    /// <summary>rmqueue_bulk's frames: a batch from the node onto the list. Returns how many came.</summary>
    private async ValueTask<int> AddBatch(EmuMachine m, EmuTask t)
    {
        var got = new long[m.Cost.PcpBatch];
        int n = await m.FramePort.AllocBulk(t, t.Node, got, got.Length);
        if (_frames.Length - _count < n)
            Array.Resize(ref _frames, _count + n);
        for (int i = 0; i < n; i++) _frames[_count++] = got[i];
        m.Frames.Pcp += n;
        return n;
    }

    /// <summary>
    /// <see cref="Reserve"/> for a frame sent ahead with a request (the orleans engine's fault path): the refill is made
    /// now — in the free list's order, if that order matters — but its cost goes with the frame to the allocation that
    /// uses it (<see cref="TakeOne(EmuMachine, out long)"/>), so that, as under the sim engine, the fault pays it under its lock.
    /// </summary>
    public async ValueTask ReserveAhead(EmuMachine m, EmuTask t, int k)
    {
        if (_count >= k) return;
        if (m.FramePort.RefillOrderMatters(t.Node)) await t.DelayExact(0);
        if (await AddBatch(m, t) > 0) _refillDueNs += m.Cost.PcpRefillNs;
    }

    /// <summary>Take one frame to send with a request, with the refill cost still due (0: none), or -1 if the list is empty.</summary>
    public long TakeOne(EmuMachine m, out long refillDueNs)
    {
        long frame = TakeOne(m);
        refillDueNs = frame < 0 ? 0 : _refillDueNs;
        if (frame >= 0) _refillDueNs = 0;
        return frame;
    }

    /// <summary>Frames handed over by someone else, with a refill cost still due on them (see <see cref="ReserveAhead"/>).</summary>
    public void Load(EmuMachine m, ReadOnlySpan<long> frames, long refillDueNs)
    {
        Load(m, frames);
        _refillDueNs += refillDueNs;
    }

    /// <summary>Frames handed over by someone else (under the orleans engine, the faulting CPU sends its own with the request).</summary>
    public void Load(EmuMachine m, ReadOnlySpan<long> frames)
    {
        if (_count + frames.Length > _frames.Length)
            Array.Resize(ref _frames, _count + frames.Length);
        foreach (long f in frames)
            _frames[_count++] = f;
        m.Frames.Pcp += frames.Length;
    }

    /// <summary>Take one frame off the list to hand to someone else, or -1 if it is empty.</summary>
    public long TakeOne(EmuMachine m)
    {
        if (_count == 0) return -1;
        m.Frames.Pcp--;
        return _frames[--_count];
    }

    /// <summary>Take back up to <paramref name="max"/> frames (what a request did not use).</summary>
    public long[] Take(EmuMachine m, int max)
    {
        int n = Math.Min(max, _count);
        var taken = new long[n];
        for (int i = 0; i < n; i++) taken[i] = _frames[--_count];
        m.Frames.Pcp -= n;
        return taken;
    }

    /// <summary>alloc_pages on the local node: pop from the list, refilling it from the node when empty. -1 = OOM.</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public async ValueTask<long> Alloc(EmuMachine m, EmuTask t)
    {
        t.Advance(m.Cost.PageAllocNs); // the list is this CPU's own
        if (_count == 0)
        {
            await Refill(m, t);
            _count = await m.FramePort.AllocBulk(t, t.Node, _frames, _frames.Length);
            m.Frames.Pcp += _count;
            if (_count == 0)
                return -1;
        }
        else if (_refillDueNs > 0)
        {
            long due = _refillDueNs;
            _refillDueNs = 0;
            await t.Delay(due);
        }
        m.Frames.Pcp--;
        m.Frames.InFlight++;
        return _frames[--_count];
    }

    /// <summary>
    /// The cost of taking the node's zone lock for a refill (rmqueue_bulk). The node's free list is shared by every CPU
    /// that allocates from it, so this is an exact sync point — an engine lets no CPU run ahead of another here —
    /// whenever the order of refills could change an outcome (<see cref="Ports.IFramePort.RefillOrderMatters"/>).
    /// </summary>
    private static DelayAwaitable Refill(EmuMachine m, EmuTask t) =>
        m.FramePort.RefillOrderMatters(t.Node) ? t.DelayExact(m.Cost.PcpRefillNs) : t.Delay(m.Cost.PcpRefillNs);

    /// <summary>Give every frame back to its node (end of run), so frame accounting closes.</summary>
    public void Drain(EmuMachine m)
    {
        while (_count > 0)
        {
            long f = _frames[--_count];
            m.Frames.Pcp--;
            m.FreeFrame(f);
        }
    }
}
