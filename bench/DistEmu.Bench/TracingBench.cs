using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Telemetry;

namespace DistEmu.Bench;

/// <summary>
/// `-- tracing [reps]`: the cost of tracing, side by side in one process: the sim engine on `small` (8 tasks), mmap-churn
/// (faults, writers, contention), with tracing off, 1 % sampled, contended-only (waits or holds ≥ 10 µs) and 100 %
/// sampled, spans written to a Jaeger JSON file. Each configuration after one warm-up, median of reps; prints faults/s
/// and the cost relative to untraced.
/// </summary>
public static class TracingBench
{
    public static int Run(int reps)
    {
        var spec = new MachineSpec { Name = "small", Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 4L << 30, Distance = MachineSpec.UniformDistance(2) };
        string dir = Directory.CreateTempSubdirectory("distemu-tracing-bench-").FullName;
        try
        {
            var configs = new (string Name, TracingOptions? Options)[]
            {
                ("off", null),
                ("1% sampled", new TracingOptions { SampleRatio = 0.01 }),
                ("contended >= 10us", new TracingOptions { ContendedNs = 10_000 }),
                ("100% sampled", new TracingOptions { SampleRatio = 1.0 }),
            };
            var results = new List<(string Name, double FaultsPerSecond, long Spans)>();
            foreach (var (name, options) in configs)
            {
                var rates = new List<double>();
                long spans = 0;
                for (int r = 0; r <= reps; r++)
                {
                    SpanRecorder? recorder = null;
                    JaegerJsonFile? file = null;
                    if (options != null)
                    {
                        file = new JaegerJsonFile(Path.Combine(dir, $"t{r}.json"), DateTimeOffset.UtcNow);
                        recorder = new SpanRecorder(file, options);
                    }
                    GC.Collect();
                    var sw = Stopwatch.StartNew();
                    var result = SimRun.Run(new SimRunOptions { Machine = spec, Workload = "mmap-churn", OpsPerTask = 40_000, Sanitizer = false, Observer = recorder });
                    file?.Complete();
                    sw.Stop();
                    if (r == 0) continue; // warm-up
                    rates.Add(result.Machine.VmStat.Faults / sw.Elapsed.TotalSeconds);
                    spans = recorder?.Spans ?? 0;
                    file?.Dispose();
                }
                rates.Sort();
                results.Add((name, rates[rates.Count / 2], spans));
            }
            double baseline = results[0].FaultsPerSecond;
            Console.WriteLine($"# sim engine, small (8 tasks), mmap-churn, 40,000 ops per task, sanitizer off, median of {reps} after 1 warm-up, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            Console.WriteLine($"{"tracing",-20} {"faults/host-s",14} {"spans",10} {"cost",8}");
            foreach (var (name, fps, spans) in results)
                Console.WriteLine($"{name,-20} {fps,14:N0} {spans,10:N0} {(1 - fps / baseline) * 100,7:F1}%");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
