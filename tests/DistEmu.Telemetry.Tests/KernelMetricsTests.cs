using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using OpenTelemetry.Metrics;

namespace DistEmu.Telemetry.Tests;

/// <summary>The metrics agree with the kernel's final counters (what stats.json is written from).</summary>
[Collection(OtlpCollection.Name)]
public class KernelMetricsTests
{
    // Cumulative: every export (Flush, then shutdown) snapshots the totals again; the last one counts.
    private static MetricSnapshot Last(List<MetricSnapshot> metrics, string name) => metrics.Last(m => m.Name == name);

    private static Dictionary<string, long> Sums(List<MetricSnapshot> metrics, string name)
    {
        var r = new Dictionary<string, long>();
        var m = Last(metrics, name);
        foreach (var p in m.MetricPoints)
        {
            var key = string.Join(",", Tags(p).Where(t => t.Key.StartsWith("emu.", StringComparison.Ordinal)).Select(t => $"{t.Key}={t.Value}").Order());
            long v = m.MetricType == MetricType.LongSum ? p.GetSumLong() : p.GetHistogramCount();
            r[key] = r.GetValueOrDefault(key) + v;
        }
        return r;
    }

    private static List<KeyValuePair<string, object?>> Tags(MetricPoint p)
    {
        var l = new List<KeyValuePair<string, object?>>();
        foreach (var t in p.Tags) l.Add(t);
        return l;
    }

    [Fact]
    public void Counters_and_histogram_counts_equal_the_machines_final_numbers()
    {
        var r = Scenarios.Lkml(FaultPolicy.Merged, sameVma: true, new ListSink());
        var m = r.Machine;
        var metrics = new List<MetricSnapshot>();
        using (var km = new KernelMetrics(new KernelMetricsOptions { Configure = b => b.AddInMemoryExporter(metrics) }))
        {
            km.Publish(m, new Dictionary<string, string> { ["emu.policy"] = "merged", ["run"] = "lkml" });
            Assert.True(km.Flush());
        }
        Assert.NotEmpty(metrics);
        var v = m.VmStat;
        var faults = Sums(metrics, "distemu.faults");
        Assert.Equal(v.Faults, faults.Values.Sum());
        Assert.Equal(v.Faults - v.Sigsegv - v.Sigbus, faults["emu.fault.result=ok,emu.policy=merged"]);
        Assert.True(v.Faults > 0);
        foreach (var (name, value) in new[]
                 {
                     ("vma_lock_success", v.vma_lock_success), ("vma_lock_abort", v.vma_lock_abort), ("vma_lock_retry", v.vma_lock_retry),
                     ("vma_lock_miss", v.vma_lock_miss), ("pgmigrate_success", v.pgmigrate_success), ("pgmigrate_fail", v.pgmigrate_fail),
                     ("thp_fault_alloc", v.thp_fault_alloc), ("thp_fault_fallback", v.thp_fault_fallback),
                     ("thp_migration_success", v.thp_migration_success), ("thp_migration_fail", v.thp_migration_fail), ("thp_split_pmd", v.thp_split_pmd),
                 })
            Assert.Equal(value, Sums(metrics, "distemu." + name).Values.Sum());
        Assert.True(v.pgmigrate_success > 0);

        var waits = Sums(metrics, "distemu.lock.wait");
        var holds = Sums(metrics, "distemu.lock.hold");
        foreach (var e in m.LockStats.Entries)
        {
            string key = $"emu.lock.mode={e.Mode.Name()},emu.lock={e.Class.Name()},emu.policy=merged";
            Assert.Equal(e.Wait.Count, waits.GetValueOrDefault(key));
            Assert.Equal(e.Hold.Count, holds.GetValueOrDefault(key));
        }
        Assert.Equal(m.MigrationWait.Count, Sums(metrics, "distemu.migration.wait").Values.Sum());
        Assert.Equal(m.FaultLatency.Count, Sums(metrics, "distemu.fault.latency").Values.Sum());
        Assert.Equal(m.WriterWait.Count, Sums(metrics, "distemu.writer.wait").Values.Sum());
        Assert.True(m.MigrationWait.Count > 0);

        // Min and max survive: the HdrHistogram bucket of the exact value (3 significant digits).
        foreach (var p in Last(metrics, "distemu.migration.wait").MetricPoints)
        {
            Assert.True(p.TryGetHistogramMinMaxValues(out double min, out double max));
            Assert.InRange(max, m.MigrationWait.Max * 0.999, m.MigrationWait.Max * 1.001);
            Assert.InRange(min, m.MigrationWait.Min * 0.999, m.MigrationWait.Min * 1.001);
            Assert.InRange(p.GetHistogramSum(), m.MigrationWait.Total * 0.999, m.MigrationWait.Total * 1.001);
        }
    }
}
