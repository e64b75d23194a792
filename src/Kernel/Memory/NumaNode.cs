namespace DistEmu.Kernel.Memory;

/// <summary>
/// A NUMA node's frames (pg_data_t and its buddy allocator, reduced to what the protocol needs): a contiguous
/// range of global frame numbers, handed out never-used first, then from the free list. Memory grows only with
/// frames that were freed (8 bytes each on the free list), never with the node's size.
/// Order-9 blocks (a THP's 512 contiguous, 512-aligned frames) come from a free list of such blocks, then from the
/// never-used range (the frames skipped to align it go to the 4 KiB list). Freed single frames are never merged back into
/// blocks (no buddy coalescing, no compaction): once the never-used range and the freed blocks are gone, a THP allocation
/// fails and the fault falls back to 4 KiB pages, as a fragmented node without compaction does.
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
    private readonly Stack<long> _freeHuge = new();

    /// <summary>Frames in a THP block (HPAGE_PMD_NR).</summary>
    public const int HugeFrames = 512;
    /// <summary>Marks a THP head in a batch of frees sent to a node (the block goes back whole).</summary>
    public const long HugeFreeTag = 1L << 62;

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

    public long FreeFrames => FrameCount - (_nextUnused - FirstFrame) + _freeCount + (long)_freeHuge.Count * HugeFrames;

    /// <summary>Free THP blocks: freed ones plus what the never-used range still holds.</summary>
    public long FreeHugeBlocks => _freeHuge.Count + Math.Max(0, (FirstFrame + FrameCount - AlignUp(_nextUnused)) / HugeFrames);

    private static long AlignUp(long f) => (f + HugeFrames - 1) & ~(long)(HugeFrames - 1);

    /// <summary>
    /// __alloc_pages of order HPAGE_PMD_ORDER without compaction (the THP fault's GFP_TRANSHUGE_LIGHT under the default
    /// defrag=madvise): a freed block, else the next aligned block of the never-used range. -1 if none.
    /// </summary>
    public long AllocHuge()
    {
        if (_freeHuge.Count > 0)
            return _freeHuge.Pop();
        long head = AlignUp(_nextUnused);
        if (head + HugeFrames > FirstFrame + FrameCount)
            return -1;
        for (long f = _nextUnused; f < head; f++)
            Free(f);
        _nextUnused = head + HugeFrames;
        return head;
    }

    /// <summary>A THP's block back whole (free_pages of order 9).</summary>
    public void FreeHuge(long head)
    {
        if (head < FirstFrame || head + HugeFrames > FirstFrame + FrameCount || (head & (HugeFrames - 1)) != 0)
            throw new InvalidOperationException($"frame {head} is not a THP block of node {Id}");
        _freeHuge.Push(head);
    }

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
        // The buddy allocator splits a higher-order block when the order-0 lists are empty.
        while (n < max && _freeHuge.Count > 0)
        {
            long head = _freeHuge.Pop();
            for (int i = HugeFrames - 1; i >= 0; i--) Free(head + i);
            while (n < max && _freeCount > 0)
            {
                _freeCount--;
                into[offset + n++] = _free[(int)(_freeCount >> ChunkShift)][_freeCount & ChunkMask];
            }
        }
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
