namespace DistEmu.Kernel.Memory;

/// <summary>
/// A NUMA node's frames (pg_data_t and its buddy allocator, reduced to what the protocol needs): a contiguous
/// range of global frame numbers, handed out never-used first, then from the free list. Memory grows only with
/// frames that were freed (8 bytes each on the free list), never with the node's size.
/// </summary>
public sealed class NumaNode
{
    private long _nextUnused;
    private long[] _free = new long[64];
    private int _freeCount;

    public int Id { get; }
    public long FirstFrame { get; }
    public long FrameCount { get; }

    public NumaNode(int id, long firstFrame, long frameCount)
    {
        Id = id;
        FirstFrame = firstFrame;
        FrameCount = frameCount;
        _nextUnused = firstFrame;
    }

    public long FreeFrames => FrameCount - (_nextUnused - FirstFrame) + _freeCount;

    /// <summary>rmqueue_bulk: move up to <paramref name="max"/> frames into <paramref name="into"/>; returns how many.</summary>
    public int AllocBulk(long[] into, int offset, int max)
    {
        int n = 0;
        while (n < max && _freeCount > 0)
            into[offset + n++] = _free[--_freeCount];
        while (n < max && _nextUnused < FirstFrame + FrameCount)
            into[offset + n++] = _nextUnused++;
        return n;
    }

    public void Free(long frame)
    {
        if (frame < FirstFrame || frame >= FirstFrame + FrameCount)
            throw new InvalidOperationException($"frame {frame} does not belong to node {Id}");
        if (_freeCount == _free.Length)
            Array.Resize(ref _free, _free.Length * 2);
        _free[_freeCount++] = frame;
    }
}
