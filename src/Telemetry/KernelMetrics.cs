using System.Diagnostics;
using System.Diagnostics.Metrics;
using DistEmu.Kernel;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Stats;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace DistEmu.Telemetry;

/// <summary>How <see cref="KernelMetrics"/> exports; unset endpoint / protocol fall back to OTEL_EXPORTER_OTLP_*.</summary>
public sealed record KernelMetricsOptions
{
    /// <summary>Export over OTLP (a MeterProvider of its own) when set, or when <see cref="UseEnvironment"/> is.</summary>
    public Uri? Endpoint { get; init; }
    public OtlpExportProtocol? Protocol { get; init; }
    /// <summary>Export over OTLP to what OTEL_EXPORTER_OTLP_* says even without <see cref="Endpoint"/>.</summary>
    public bool UseEnvironment { get; init; }
    public TimeSpan CompleteTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Extra configuration of the provider (tests: an in-memory exporter); creates a provider on its own.</summary>
    public Action<MeterProviderBuilder>? Configure { get; init; }
}

/// <summary>
/// The kernel's end-of-run numbers as OpenTelemetry metrics on the <c>DistEmu</c> meter, from the same counters and
/// histograms stats.json is written from, so the two agree: counters (added once per <see cref="Publish"/>) for faults
/// by result and the vma_lock / pgmigrate / thp vmstat lines; histograms (unit ns) for lock wait and hold by lock and mode,
/// migration wait, fault latency and writer wait, fed with each HdrHistogram bucket's (value, count) pairs. Counts
/// are exact; sums and min/max are those of the bucket values (HdrHistogram, 3 significant digits).
/// </summary>
public sealed class KernelMetrics : IDisposable
{
    public const string MeterName = "DistEmu";

    private static readonly string[] HistogramNames =
        ["distemu.lock.wait", "distemu.lock.hold", "distemu.migration.wait", "distemu.fault.latency", "distemu.writer.wait"];

    private readonly Meter _meter = new(MeterName);
    private readonly MeterProvider? _provider;
    private readonly KernelMetricsOptions _o;
    private readonly Counter<long> _faults, _vmaSuccess, _vmaAbort, _vmaRetry, _vmaMiss, _migrateSuccess, _migrateFail, _lockAcq, _lockCont;
    private readonly Counter<long> _thpFaultAlloc, _thpFaultFallback, _thpMigrationSuccess, _thpMigrationFail, _thpSplitPmd;
    private readonly Histogram<long> _lockWait, _lockHold, _migrationWait, _faultLatency, _writerWait;

    public KernelMetrics(KernelMetricsOptions? options = null)
    {
        _o = options ?? new KernelMetricsOptions();
        _faults = _meter.CreateCounter<long>("distemu.faults", "{fault}", "User faults taken, by result (ok, sigsegv, sigbus)");
        _vmaSuccess = _meter.CreateCounter<long>("distemu.vma_lock_success", "{fault}", "/proc/vmstat vma_lock_success");
        _vmaAbort = _meter.CreateCounter<long>("distemu.vma_lock_abort", "{fault}", "/proc/vmstat vma_lock_abort");
        _vmaRetry = _meter.CreateCounter<long>("distemu.vma_lock_retry", "{fault}", "/proc/vmstat vma_lock_retry");
        _vmaMiss = _meter.CreateCounter<long>("distemu.vma_lock_miss", "{fault}", "/proc/vmstat vma_lock_miss");
        _migrateSuccess = _meter.CreateCounter<long>("distemu.pgmigrate_success", "{page}", "/proc/vmstat pgmigrate_success");
        _migrateFail = _meter.CreateCounter<long>("distemu.pgmigrate_fail", "{page}", "/proc/vmstat pgmigrate_fail");
        _thpFaultAlloc = _meter.CreateCounter<long>("distemu.thp_fault_alloc", "{folio}", "/proc/vmstat thp_fault_alloc");
        _thpFaultFallback = _meter.CreateCounter<long>("distemu.thp_fault_fallback", "{fault}", "/proc/vmstat thp_fault_fallback");
        _thpMigrationSuccess = _meter.CreateCounter<long>("distemu.thp_migration_success", "{folio}", "/proc/vmstat thp_migration_success");
        _thpMigrationFail = _meter.CreateCounter<long>("distemu.thp_migration_fail", "{folio}", "/proc/vmstat thp_migration_fail");
        _thpSplitPmd = _meter.CreateCounter<long>("distemu.thp_split_pmd", "{pmd}", "/proc/vmstat thp_split_pmd");
        _lockAcq = _meter.CreateCounter<long>("distemu.lock.acquisitions", "{acquisition}", "lock_stat acquisitions, by lock and mode");
        _lockCont = _meter.CreateCounter<long>("distemu.lock.contentions", "{acquisition}", "lock_stat contentions, by lock and mode");
        _lockWait = Histogram(HistogramNames[0], "Wait of contended lock acquisitions (emulated), by lock and mode");
        _lockHold = Histogram(HistogramNames[1], "Lock hold time (emulated), by lock and mode");
        _migrationWait = Histogram(HistogramNames[2], "migration_entry_wait time (emulated)");
        _faultLatency = Histogram(HistogramNames[3], "Page fault latency (emulated)");
        _writerWait = Histogram(HistogramNames[4], "Writer system calls' wait for the lock (emulated)");

        if (_o.Endpoint is not null || _o.UseEnvironment || _o.Configure is not null)
        {
            var b = Sdk.CreateMeterProviderBuilder()
                .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService("distemu"))
                .AddMeter(MeterName);
            // ns values span 1 ns .. hours: exponential buckets keep the shape of the HdrHistogram distribution.
            foreach (var h in HistogramNames)
                b.AddView(h, new Base2ExponentialBucketHistogramConfiguration { MaxSize = 160 });
            if (_o.Endpoint is not null || _o.UseEnvironment)
            {
                b.AddOtlpExporter((x, reader) =>
                {
                    if (_o.Protocol is { } p) x.Protocol = p;
                    if (_o.Endpoint is { } e)
                        x.Endpoint = x.Protocol == OtlpExportProtocol.HttpProtobuf && e.AbsolutePath is "" or "/" ? new Uri(e, "v1/metrics") : e;
                    // Cumulative: one Publish per run, exported at the end; a backend sees the run's totals.
                    reader.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
                });
            }
            _o.Configure?.Invoke(b);
            _provider = b.Build();
        }
    }

    private Histogram<long> Histogram(string name, string description) =>
        _meter.CreateHistogram<long>(name, "ns", description, tags: null,
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = Boundaries });

    /// <summary>1-2-5 steps from 100 ns to 1000 s: what a listener without the exponential view gets.</summary>
    private static readonly long[] Boundaries = Enumerable.Range(2, 10)
        .SelectMany(e => new[] { 1L, 2, 5 }.Select(m => m * (long)Math.Pow(10, e))).ToArray();

    /// <summary>Adds one run's final numbers. <paramref name="tags"/> (e.g. policy, workload, machine) go on every point.</summary>
    public void Publish(EmuMachine m, IReadOnlyDictionary<string, string> tags)
    {
        var t = new TagList();
        foreach (var (key, value) in tags) t.Add(key, value);
        var v = m.VmStat;
        long ok = v.Faults - v.Sigsegv - v.Sigbus;
        _faults.Add(ok, With(t, ("emu.fault.result", "ok")));
        _faults.Add(v.Sigsegv, With(t, ("emu.fault.result", "sigsegv")));
        _faults.Add(v.Sigbus, With(t, ("emu.fault.result", "sigbus")));
        _vmaSuccess.Add(v.vma_lock_success, t);
        _vmaAbort.Add(v.vma_lock_abort, t);
        _vmaRetry.Add(v.vma_lock_retry, t);
        _vmaMiss.Add(v.vma_lock_miss, t);
        _migrateSuccess.Add(v.pgmigrate_success, t);
        _migrateFail.Add(v.pgmigrate_fail, t);
        _thpFaultAlloc.Add(v.thp_fault_alloc, t);
        _thpFaultFallback.Add(v.thp_fault_fallback, t);
        _thpMigrationSuccess.Add(v.thp_migration_success, t);
        _thpMigrationFail.Add(v.thp_migration_fail, t);
        _thpSplitPmd.Add(v.thp_split_pmd, t);
        foreach (var e in m.LockStats.Entries)
        {
            var lt = With(t, ("emu.lock", e.Class.Name()), ("emu.lock.mode", e.Mode.Name()));
            if (e.Acquisitions > 0) _lockAcq.Add(e.Acquisitions, lt);
            if (e.Contentions > 0) _lockCont.Add(e.Contentions, lt);
            Record(_lockWait, e.Wait, lt);
            Record(_lockHold, e.Hold, lt);
        }
        Record(_migrationWait, m.MigrationWait, t);
        Record(_faultLatency, m.FaultLatency, t);
        Record(_writerWait, m.WriterWait, t);
    }

    private static TagList With(TagList t, params (string Key, string Value)[] extra)
    {
        var r = t; // TagList is a struct: a copy
        foreach (var (k, v) in extra) r.Add(k, v);
        return r;
    }

    private static void Record(Histogram<long> h, NsHistogram source, in TagList tags)
    {
        var (values, counts, _, _, _, _) = source.Export();
        for (int i = 0; i < values.Length; i++)
            for (long c = 0; c < counts[i]; c++)
                h.Record(values[i], tags);
    }

    /// <summary>Exports what was published (bounded by the timeout); never throws for export trouble.</summary>
    public bool Flush()
    {
        try
        {
            return _provider?.ForceFlush((int)_o.CompleteTimeout.TotalMilliseconds) ?? true;
        }
        catch (Exception)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try
        {
            _provider?.Shutdown((int)_o.CompleteTimeout.TotalMilliseconds);
        }
        catch (Exception)
        {
            // Export trouble must not fail the run.
        }
        _provider?.Dispose();
        _meter.Dispose();
    }
}
