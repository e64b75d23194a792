using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>
/// page-fault1 (<see cref="BenchConfigs"/>) under the sim engine, with and without run-ahead. One benchmark
/// invocation is one whole <see cref="SimRun.Run"/> (machine construction included). The "Faults/host-s" column is
/// emulated user faults per host second, computed from the mean time and the fault count of one run.
/// </summary>
[Config(typeof(Config))]
[MemoryDiagnoser]
public class SimPageFault1
{
    [Params(1, 8, 64)]
    public int Cpus { get; set; }

    [Params(true, false)]
    public bool Sanitizer { get; set; }

    [Params(true, false)]
    public bool RunAhead { get; set; }

    /// <summary>
    /// Run the job with BenchmarkDotNet's in-process toolchain (set by <c>sim --inproc</c>): no generated project is
    /// built, the already-built binaries are measured. Use it when src/Kernel is mid-edit and would not build.
    /// </summary>
    public static bool InProcess { get; set; }

    private SimRunOptions _options = null!;

    [GlobalSetup]
    public void Setup() => _options = BenchConfigs.Options(Cpus, Sanitizer, RunAhead);

    [Benchmark]
    public long PageFault1() => SimRun.Run(_options).Machine.VmStat.Faults;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            // One run is ~0.1–1 s of host time: no pilot stage, one invocation per iteration, 2 warm-ups, 10 measured.
            var job = Job.Default
                .WithLaunchCount(1)
                .WithWarmupCount(2)
                .WithIterationCount(10)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithId(InProcess ? "ShortInProc" : "Short");
            if (InProcess) job = job.WithToolchain(InProcessEmitToolchain.Instance);
            AddJob(job);
            AddColumn(new FaultsPerHostSecondColumn());
        }
    }

    /// <summary>
    /// Faults per host second: the fault count of one run with the case's parameters (deterministic for a seed),
    /// divided by the measured mean. The count is taken from a run in the host process, cached per case.
    /// </summary>
    private sealed class FaultsPerHostSecondColumn : IColumn
    {
        private static readonly Dictionary<(int, bool), long> FaultCache = new();

        public string Id => nameof(FaultsPerHostSecondColumn);
        public string ColumnName => "Faults/host-s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Emulated user faults (VmStat.Faults) per host second, from the mean";

        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            var stats = report?.ResultStatistics;
            if (stats is null) return "NA";
            int cpus = (int)benchmarkCase.Parameters["Cpus"];
            bool sanitizer = (bool)benchmarkCase.Parameters["Sanitizer"];
            long faults;
            lock (FaultCache)
            {
                if (!FaultCache.TryGetValue((cpus, sanitizer), out faults))
                    FaultCache[(cpus, sanitizer)] = faults = SimRun.Run(BenchConfigs.Options(cpus, sanitizer)).Machine.VmStat.Faults;
            }
            double seconds = stats.Mean / 1e9;
            return (faults / seconds).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        }

        public override string ToString() => ColumnName;
    }
}
