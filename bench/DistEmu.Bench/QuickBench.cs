using System.Diagnostics;
using System.Globalization;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>
/// A plain Stopwatch loop over the page-fault1 configurations (CPUs × sanitizer × run-ahead, so that the two engines'
/// rates are compared within one run on one host): one warm-up run each, then <c>reps</c> timed
/// runs; the row shows the median run (by host time) and, on a shared host whose neighbours steal cycles, the best
/// run's rate too (the undisturbed figure). Each run is a whole <see cref="SimRun.Run"/>, machine construction included.
/// </summary>
public static class QuickBench
{
    public static int Run(int reps)
    {
        Console.WriteLine($"# page-fault1 size_mb={BenchConfigs.SizeMb}, ops per task max(40,000, 400,000 / cpus), 1 warm-up + median of {reps} timed run(s)");
        Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}");
        Console.WriteLine($"{"cpus",4} {"sanitizer",9} {"engine",9} {"faults",8} {"host_s",8} {"faults_per_host_s",17} {"best_per_host_s",15} {"events_per_fault",16} {"alloc_B_per_fault",17}");
        foreach (int cpus in BenchConfigs.CpuCounts)
        {
            foreach (bool sanitizer in BenchConfigs.SanitizerModes)
                foreach (bool runAhead in BenchConfigs.RunAheadModes)
                {
                    var options = BenchConfigs.Options(cpus, sanitizer, runAhead);
                    SimRun.Run(options); // warm-up
                    var runs = new List<(long Faults, double Seconds, long Events, long Bytes)>();
                    for (int r = 0; r < reps; r++)
                    {
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                        GC.Collect();
                        long allocated = GC.GetAllocatedBytesForCurrentThread();
                        var sw = Stopwatch.StartNew();
                        var result = SimRun.Run(options);
                        sw.Stop();
                        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
                        runs.Add((result.Machine.VmStat.Faults, sw.Elapsed.TotalSeconds, result.EngineEvents, allocated));
                    }
                    runs.Sort((a, b) => a.Seconds.CompareTo(b.Seconds));
                    var (faults, seconds, events, bytes) = runs[runs.Count / 2];
                    double best = runs[0].Faults / runs[0].Seconds;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{cpus,4} {(sanitizer ? "on" : "off"),9} {(runAhead ? "run-ahead" : "exact"),9} {faults,8} {seconds,8:F3} {faults / seconds,17:F0} {best,15:F0} {(double)events / faults,16:F2} {(double)bytes / faults,17:F0}"));
                }
        }
        return 0;
    }
}
