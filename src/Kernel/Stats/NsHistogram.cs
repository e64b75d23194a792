using HdrHistogram;

namespace DistEmu.Kernel.Stats;

/// <summary>
/// A distribution of emulated nanoseconds (HdrHistogram, 3 significant digits, 1 ns to ~1 hour) that also keeps
/// the exact count, total, min and max. Percentiles are HdrHistogram's (within 0.1 %).
/// </summary>
public sealed class NsHistogram
{
    private const long Highest = 3_600_000_000_000L;
    private LongHistogram? _h;
    public long Count { get; private set; }
    public long Total { get; private set; }
    public long Min { get; private set; }
    public long Max { get; private set; }

    public void Record(long ns)
    {
        if (ns < 0) ns = 0;
        _h ??= new LongHistogram(Highest, 3);
        _h.RecordValue(Math.Min(Math.Max(ns, 1), Highest));
        if (Count == 0 || ns < Min) Min = ns;
        if (ns > Max) Max = ns;
        Count++;
        Total += ns;
    }

    public long Percentile(double p) => _h is null || Count == 0 ? 0 : Math.Min(_h.GetValueAtPercentile(p), Max);
    public long P50 => Percentile(50);
    public long P99 => Percentile(99);
    public double Avg => Count == 0 ? 0 : (double)Total / Count;

    public void Add(NsHistogram other)
    {
        if (other.Count == 0) return;
        _h ??= new LongHistogram(Highest, 3);
        _h.Add(other._h!);
        Min = Count == 0 ? other.Min : Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
        Count += other.Count;
        Total += other.Total;
    }

    /// <summary>The recorded distribution as (value, count) pairs plus the exact summary, for merging across grains.</summary>
    public (long[] Values, long[] Counts, long Count, long Total, long Min, long Max) Export()
    {
        if (_h is null || Count == 0) return ([], [], 0, 0, 0, 0);
        var values = new List<long>();
        var counts = new List<long>();
        foreach (var v in _h.RecordedValues())
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
        _h ??= new LongHistogram(Highest, 3);
        for (int i = 0; i < values.Length; i++)
            _h.RecordValueWithCount(Math.Min(Math.Max(values[i], 1), Highest), counts[i]);
        Min = Count == 0 ? min : Math.Min(Min, min);
        Max = Math.Max(Max, max);
        Count += count;
        Total += total;
    }

    public override string ToString() => $"n={Count} p50={P50} p99={P99} max={Max} total={Total}";
}
