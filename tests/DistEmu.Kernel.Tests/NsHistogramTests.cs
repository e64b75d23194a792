using DistEmu.Kernel.Stats;
using HdrHistogram;
using Xunit.Abstractions;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// NsHistogram keeps up to Inline distinct values exactly before it allocates the HdrHistogram: percentiles, exports
/// and merges must be exactly those of a histogram that recorded every value from the start.
/// </summary>
public class NsHistogramTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(NsHistogram.Inline)]
    [InlineData(NsHistogram.Inline + 1)]
    [InlineData(2000)]
    public void Percentiles_and_export_match_a_histogram_that_saw_every_value(int n)
    {
        var rng = new Random(n);
        var h = new NsHistogram();
        var reference = new LongHistogram(3_600_000_000_000L, 3);
        for (int i = 0; i < n; i++)
        {
            long v = rng.NextInt64(1, 10_000_000);
            h.Record(v);
            reference.RecordValue(v);
        }
        var (values, counts, count, _, _, max) = h.Export();
        var want = reference.RecordedValues().Select(v => (v.ValueIteratedTo, v.CountAtValueIteratedTo)).ToArray();
        output.WriteLine($"{n} values: allocated {h.Allocated}, p50 {h.P50} (reference {reference.GetValueAtPercentile(50)}), p99 {h.P99}, {values.Length} exported buckets");
        Assert.Equal(n > NsHistogram.Inline, h.Allocated);
        Assert.Equal(n, count);
        Assert.Equal(Math.Min(reference.GetValueAtPercentile(50), max), h.P50);
        Assert.Equal(Math.Min(reference.GetValueAtPercentile(99), max), h.P99);
        Assert.Equal(want, values.Zip(counts).ToArray());
    }

    /// <summary>
    /// An inline distribution exports its buckets without building the histogram: the same (value, count) pairs, over
    /// the whole range (0 and past the top are clamped as recorded), each bucket named by its highest equivalent value.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void An_inline_export_names_the_buckets_the_histogram_would_over_the_whole_range(int seed)
    {
        var rng = new Random(seed);
        var h = new NsHistogram();
        var reference = new LongHistogram(3_600_000_000_000L, 3);
        long[] edges = [0, 1, 2, 2047, 2048, 2049, 4095, 4096, 1L << 40, 3_600_000_000_000L, 3_600_000_000_001L, long.MaxValue / 4];
        var values = edges.Concat(Enumerable.Range(0, NsHistogram.Inline - edges.Length).Select(_ => (long)Math.Pow(10, rng.NextDouble() * 12.5))).ToArray();
        foreach (long v in values)
        {
            int times = rng.Next(1, 4);
            for (int k = 0; k < times; k++)
            {
                h.Record(v);
                reference.RecordValue(Math.Min(Math.Max(v, 1), 3_600_000_000_000L));
            }
        }
        Assert.False(h.Allocated);
        var (got, counts, _, _, _, _) = h.Export();
        Assert.False(h.Allocated);
        var want = reference.RecordedValues().Select(v => (v.ValueIteratedTo, v.CountAtValueIteratedTo)).ToArray();
        Assert.Equal(want, got.Zip(counts).ToArray());
    }

    [Fact]
    public void Many_records_of_few_distinct_costs_stay_inline_and_read_as_the_histogram_would()
    {
        var h = new NsHistogram();
        var reference = new LongHistogram(3_600_000_000_000L, 3);
        long[] costs = [690, 1_760, 2_450, 40_000, 1_000_000];
        for (int i = 0; i < 10_000; i++)
        {
            long v = costs[i * 7 % costs.Length] * (i % 3 == 0 ? 1 : 2);
            h.Record(v);
            reference.RecordValue(v);
        }
        output.WriteLine($"10,000 values, {costs.Length * 2} distinct: allocated {h.Allocated}, p50 {h.P50}, p99 {h.P99} (reference {reference.GetValueAtPercentile(50)}, {reference.GetValueAtPercentile(99)})");
        Assert.False(h.Allocated);
        Assert.Equal(reference.GetValueAtPercentile(50), h.P50);
        Assert.Equal(Math.Min(reference.GetValueAtPercentile(99), h.Max), h.P99);
        Assert.Equal(10_000, h.Count);
    }

    [Fact]
    public void Merging_inline_and_allocated_histograms_gives_the_distribution_of_all_their_values()
    {
        var few = new NsHistogram();
        var many = new NsHistogram();
        var reference = new LongHistogram(3_600_000_000_000L, 3);
        for (int i = 1; i <= 10; i++) { few.Record(i * 1000); reference.RecordValue(i * 1000); }
        for (int i = 1; i <= 500; i++) { many.Record(i * 77); reference.RecordValue(i * 77); }
        var merged = new NsHistogram();
        merged.Add(few);
        merged.Add(many);
        var imported = new NsHistogram();
        var (v, c, n, total, min, max) = few.Export();
        imported.Import(v, c, n, total, min, max);
        (v, c, n, total, min, max) = many.Export();
        imported.Import(v, c, n, total, min, max);
        output.WriteLine($"merged: n {merged.Count}, p50 {merged.P50}, p99 {merged.P99}; imported: n {imported.Count}, p50 {imported.P50}; reference p50 {reference.GetValueAtPercentile(50)}");
        Assert.Equal(510, merged.Count);
        Assert.Equal(reference.GetValueAtPercentile(50), merged.P50);
        Assert.Equal(reference.GetValueAtPercentile(99), merged.P99);
        Assert.Equal(merged.P50, imported.P50);
        Assert.Equal(merged.P99, imported.P99);
        Assert.Equal(1000 * 55 + 77 * 500 * 501 / 2, merged.Total);
    }
}
