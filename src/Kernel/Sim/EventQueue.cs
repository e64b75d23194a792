namespace DistEmu.Kernel.Sim;

/// <summary>
/// The sim engine's pending resumptions: a binary min-heap on (emulated time, tie-break). With many CPUs in lockstep
/// every fault step goes through it, so entries are structs compared field by field, not tuples through a comparer.
/// </summary>
internal sealed class EventQueue
{
    private struct Entry
    {
        public long Time;
        public long Tie;
        public Action Action;
    }

    private Entry[] _heap = new Entry[64];
    private int _count;

    public int Count => _count;

    public void Enqueue(long time, long tie, Action action)
    {
        if (_count == _heap.Length)
            Array.Resize(ref _heap, _count * 2);
        int i = _count++;
        // Sift up: move parents down until the new entry's place is found.
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            ref var p = ref _heap[parent];
            if (p.Time < time || (p.Time == time && p.Tie <= tie))
                break;
            _heap[i] = p;
            i = parent;
        }
        _heap[i] = new Entry { Time = time, Tie = tie, Action = action };
    }

    /// <summary>The earliest entry's time and tie-break; false when empty.</summary>
    public bool TryPeek(out long time, out long tie)
    {
        if (_count == 0)
        {
            time = tie = 0;
            return false;
        }
        time = _heap[0].Time;
        tie = _heap[0].Tie;
        return true;
    }

    public bool TryDequeue(out Action action, out long time)
    {
        if (_count == 0)
        {
            action = null!;
            time = 0;
            return false;
        }
        action = _heap[0].Action;
        time = _heap[0].Time;
        var last = _heap[--_count];
        _heap[_count] = default;
        if (_count > 0)
            SiftDown(last);
        return true;
    }

    private void SiftDown(Entry e)
    {
        int i = 0;
        int n = _count;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && Less(ref _heap[child + 1], ref _heap[child]))
                child++;
            if (!Less(ref _heap[child], ref e))
                break;
            _heap[i] = _heap[child];
            i = child;
        }
        _heap[i] = e;
    }

    private static bool Less(ref Entry a, ref Entry b) => a.Time < b.Time || (a.Time == b.Time && a.Tie < b.Tie);
}
