namespace DistEmu.Kernel.Memory;

/// <summary>
/// A NUMA node's frames (pg_data_t and its buddy allocator, reduced to what the protocol needs): a contiguous
/// range of global frame numbers, handed out never-used first, then from the free list. Memory grows only with
/// frames that were freed (8 bytes each on the free list), never with the node's size.
/// </summary>
public sealed class NumaNode
{
    /// <summary>
    /// The free list is a stack kept in chunks of 4,096 frames (32 KiB, under the large-object heap's threshold): a
    /// node that gets millions of frames back from munmap grows it chunk by chunk, where one array would be copied
    /// at every doubling and, on the large-object heap, bring full collections.
    /// </summary>
    private const int ChunkShift = 12;
    private const int ChunkMask = (1 << ChunkShift) - 1;
    private readonly List<long[]> _free = new();
    private long _nextUnused;
    private long _freeCount;

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
        {
            _freeCount--;
            into[offset + n++] = _free[(int)(_freeCount >> ChunkShift)][_freeCount & ChunkMask];
        }
        while (n < max && _nextUnused < FirstFrame + FrameCount)
            into[offset + n++] = _nextUnused++;
        return n;
    }

    public void Free(long frame)
    {
        if (frame < FirstFrame || frame >= FirstFrame + FrameCount)
            throw new InvalidOperationException($"frame {frame} does not belong to node {Id}");
        int chunk = (int)(_freeCount >> ChunkShift);
        if (chunk == _free.Count)
            _free.Add(new long[1 << ChunkShift]);
        _free[chunk][_freeCount & ChunkMask] = frame;
        _freeCount++;
    }
}
