using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Telemetry;

namespace DistEmu.Bench;

/// <summary>
/// `-- tracing [reps]`: the cost of tracing, side by side in one process: the sim engine on `small` (8 tasks), mmap-churn
/// (faults, writers, contention), with tracing off, 1 % sampled, contended-only (waits or holds ≥ 10 µs) and 100 %
/// sampled, spans written to a Jaeger JSON file (and 100 % with no writer: the recorder's own share). One warm-up round, then `reps` rounds; each round runs every
/// configuration once, in turn, so a change in the host's load hits them alike. Prints the median faults per host second
/// and per CPU second of the process (all its threads: less sensitive to other jobs on the host), host bytes allocated
/// per fault, and the cost relative to untraced for both (the median of each round's ratio).
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
                ("100%, no file", new TracingOptions { SampleRatio = 1.0 }),
            };
            var rates = configs.Select(_ => new List<double>()).ToArray();
            var cpuRates = configs.Select(_ => new List<double>()).ToArray();
            var bytes = configs.Select(_ => new List<double>()).ToArray();
            var spans = new long[configs.Length];
            var fileBytes = new long[configs.Length];
            for (int r = 0; r <= reps; r++)
            {
                for (int c = 0; c < configs.Length; c++)
                {
                    var options = configs[c].Options;
                    SpanRecorder? recorder = null;
                    JaegerJsonFile? file = null;
                    long bytesWritten = 0;
                    if (options != null)
                    {
                        ITraceSink sink = configs[c].Name.EndsWith("no file", StringComparison.Ordinal) ? new NoSink()
                            : file = new JaegerJsonFile(Path.Combine(dir, $"t{r}-{c}.json"), DateTimeOffset.UtcNow);
                        recorder = new SpanRecorder(sink, options);
                    }
                    GC.Collect();
                    long allocated = GC.GetAllocatedBytesForCurrentThread();
                    var process = Process.GetCurrentProcess();
                    var cpu0 = process.TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    var result = SimRun.Run(new SimRunOptions { Machine = spec, Workload = "mmap-churn", OpsPerTask = 40_000, Sanitizer = false, Observer = recorder });
                    file?.Complete();
                    sw.Stop();
                    process.Refresh();
                    var cpu = process.TotalProcessorTime - cpu0;
                    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
                    file?.Dispose();
                    if (file != null) bytesWritten = new FileInfo(Path.Combine(dir, $"t{r}-{c}.json")).Length;
                    File.Delete(Path.Combine(dir, $"t{r}-{c}.json"));
                    if (r == 0) continue; // warm-up
                    long faults = result.Machine.VmStat.Faults;
                    rates[c].Add(faults / sw.Elapsed.TotalSeconds);
                    cpuRates[c].Add(faults / cpu.TotalSeconds);
                    bytes[c].Add((double)allocated / faults);
                    spans[c] = recorder?.Spans ?? 0;
                    fileBytes[c] = bytesWritten;
                }
            }
            Console.WriteLine($"# sim engine, small (8 tasks), mmap-churn, 40,000 ops per task, sanitizer off, {reps} rounds after 1 warm-up, configurations interleaved, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            Console.WriteLine($"{"tracing",-20} {"faults/host-s",14} {"faults/cpu-s",13} {"B/fault",8} {"spans",10} {"file MB",8} {"cost",7} {"cpu cost",9}  cost per round");
            for (int c = 0; c < configs.Length; c++)
            {
                var costs = Enumerable.Range(0, reps).Select(i => 1 - rates[c][i] / rates[0][i]).ToList();
                var cpuCosts = Enumerable.Range(0, reps).Select(i => 1 - cpuRates[c][i] / cpuRates[0][i]).ToList();
                Console.WriteLine($"{configs[c].Name,-20} {Median(rates[c]),14:N0} {Median(cpuRates[c]),13:N0} {Median(bytes[c]),8:N0} {spans[c],10:N0} {fileBytes[c] / 1e6,8:N0} {Median(costs) * 100,6:F1}% {Median(cpuCosts) * 100,8:F1}%  {string.Join(" ", costs.Select(x => $"{x * 100:F1}%"))}");
            }
            return 0;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>Spans recorded and dropped on the floor: the recorder's own cost, without a writer's.</summary>
    private sealed class NoSink : ITraceSink
    {
        public void Write(IReadOnlyList<EmuSpan> trace)
        {
        }

        public void Complete()
        {
        }
    }

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
