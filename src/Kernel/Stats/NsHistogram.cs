using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HdrHistogram;

namespace DistEmu.Kernel.Stats;

/// <summary>
/// A distribution of emulated nanoseconds (HdrHistogram, 3 significant digits, 1 ns to ~1 hour) that also keeps
/// the exact count, total, min and max. Percentiles are HdrHistogram's (within 0.1 %).
/// The HdrHistogram's counts array is ~270 KB, and under the orleans engine every grain has its own statistics
/// (a replayed trace makes thousands of VMA grains), so values are first kept exactly, as value → count for up to
/// <see cref="Inline"/> distinct values (emulated costs repeat: most distributions have few), and poured into the
/// histogram when it is allocated. Every answer is the histogram's, so nothing recorded, merged or exported changes.
/// </summary>
public sealed class NsHistogram
{
    private const long Highest = 3_600_000_000_000L;
    /// <summary>Distinct values kept before the histogram is allocated.</summary>
    public const int Inline = 128;
    private LongHistogram? _h;
    private Dictionary<long, long>? _few;
    public long Count { get; private set; }
    public long Total { get; private set; }
    public long Min { get; private set; }
    public long Max { get; private set; }

    /// <summary>Whether the full histogram has been allocated (more than <see cref="Inline"/> distinct values, or an import).</summary>
    public bool Allocated => _h != null;

    public void Record(long ns)
    {
        if (ns < 0) ns = 0;
        Put(Math.Min(Math.Max(ns, 1), Highest));
        if (Count == 0 || ns < Min) Min = ns;
        if (ns > Max) Max = ns;
        Count++;
        Total += ns;
    }

    /// <summary>Adds <paramref name="count"/> times one (already clamped) value to the distribution only.</summary>
    private void Put(long value, long count = 1)
    {
        if (_h is null)
        {
            _few ??= new Dictionary<long, long>();
            // One hash lookup for the common case, a value seen before (lock holds and fault latencies repeat): every
            // fault records three of them.
            ref long n = ref CollectionsMarshal.GetValueRefOrNullRef(_few, value);
            if (!Unsafe.IsNullRef(ref n))
            {
                n += count;
                return;
            }
            if (_few.Count < Inline)
            {
                _few.Add(value, count);
                return;
            }
        }
        Histogram().RecordValueWithCount(value, count);
    }

    /// <summary>The histogram, allocated (with the values kept so far) if needed.</summary>
    private LongHistogram Histogram()
    {
        if (_h != null) return _h;
        _h = new LongHistogram(Highest, 3);
        if (_few != null)
            foreach (var (v, n) in _few)
                _h.RecordValueWithCount(v, n);
        _few = null;
        return _h;
    }

    /// <summary>The distribution to read: the histogram, or a throw-away one built from the few values kept (null if empty).</summary>
    private LongHistogram? View()
    {
        if (_h != null) return _h;
        if (_few is null || _few.Count == 0) return null;
        var h = new LongHistogram(Highest, 3);
        foreach (var (v, n) in _few)
            h.RecordValueWithCount(v, n);
        return h;
    }

    public long Percentile(double p) => Count == 0 || View() is not { } h ? 0 : Math.Min(h.GetValueAtPercentile(p), Max);
    public long P50 => Percentile(50);
    public long P99 => Percentile(99);
    public double Avg => Count == 0 ? 0 : (double)Total / Count;

    public void Add(NsHistogram other)
    {
        if (other.Count == 0) return;
        if (other._h != null)
            Histogram().Add(other._h);
        else if (other._few != null)
            foreach (var (v, n) in other._few)
                Put(v, n);
        Min = Count == 0 ? other.Min : Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
        Count += other.Count;
        Total += other.Total;
    }

    /// <summary>The recorded distribution as (value, count) pairs plus the exact summary, for merging across grains.</summary>
    public (long[] Values, long[] Counts, long Count, long Total, long Min, long Max) Export()
    {
        if (Count == 0) return ([], [], 0, 0, 0, 0);
        if (_h is null)
        {
            if (_few is null || _few.Count == 0) return ([], [], 0, 0, 0, 0);
            // What the histogram's recorded values would be, without building its ~270 KB (a large-object allocation):
            // every grain exports its distributions when a run's results are collected, thousands at once on a big
            // machine. Each value's bucket is named by its highest equivalent value, which depends only on the
            // precision (3 digits, from 1 ns), so a histogram of the same precision and a tiny range names it the same.
            var precision = new LongHistogram(2, 3);
            var buckets = new SortedDictionary<long, long>();
            foreach (var (v, n) in _few)
            {
                long bucket = precision.HighestEquivalentValue(v);
                buckets[bucket] = buckets.GetValueOrDefault(bucket) + n;
            }
            return (buckets.Keys.ToArray(), buckets.Values.ToArray(), Count, Total, Min, Max);
        }
        var h = _h;
        var values = new List<long>();
        var counts = new List<long>();
        foreach (var v in h.RecordedValues())
        {
            values.Add(v.ValueIteratedTo);
            counts.Add(v.CountAtValueIteratedTo);
        }
        return (values.ToArray(), counts.ToArray(), Count, Total, Min, Max);
    }

    /// <summary>Add an exported distribution to this one.</summary>
    public void Import(long[] values, long[] counts, long count, long total, long min, long max)
    {
        if (count == 0) return;
        for (int i = 0; i < values.Length; i++)
            Put(Math.Min(Math.Max(values[i], 1), Highest), counts[i]);
        Min = Count == 0 ? min : Math.Min(Min, min);
        Max = Math.Max(Max, max);
        Count += count;
        Total += total;
    }

    public override string ToString() => $"n={Count} p50={P50} p99={P99} max={Max} total={Total}";
}
