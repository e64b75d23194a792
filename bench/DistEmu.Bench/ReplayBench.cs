using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Replay;
using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;

namespace DistEmu.Bench;

/// <summary>
/// `-- replay [lines]`: generate a synthetic perf trace of N lines (default 10 M, 4 threads), then (1) parse it
/// alone and (2) replay it on a 2-node × 4-CPU machine as fast as possible, sampling the managed heap (with and without
/// garbage); prints lines/s and the peak managed heap of the replay (the trace is streamed, never loaded whole).
/// `--orleans` then replays the same trace on the orleans engine (an embedded silo) and prints the ratio of the rates.
/// </summary>
public static class ReplayBench
{
    public static int Run(long lines, bool orleans)
    {
        string path = Path.Combine(Path.GetTempPath(), $"distemu-bench-{Environment.ProcessId}.perf.txt");
        try
        {
            var sw = Stopwatch.StartNew();
            using (var w = new StreamWriter(path))
                SyntheticTrace.Write(w, lines, seed: 42, threads: 4);
            Console.WriteLine($"generated {lines:N0} lines ({new FileInfo(path).Length / (1 << 20):N0} MiB) in {sw.Elapsed.TotalSeconds:F1} s");

            sw.Restart();
            using (var reader = PerfScriptReader.Open(path, PerfParseMode.Strict))
            {
                var stats = reader.Drain();
                Console.WriteLine($"parse:  {stats.LinesRead:N0} lines in {sw.Elapsed.TotalSeconds:F2} s = {stats.LinesRead / sw.Elapsed.TotalSeconds / 1e6:F2} M lines/s");
            }

            var spec = new MachineSpec { Name = "small", Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 4L << 30, Distance = MachineSpec.UniformDistance(2) };
            var options = new ReplayOptions { AsFastAsPossible = true, Sanitizer = false };
            double simRate = Measure("replay", () =>
            {
                var r = TraceReplay.RunSim(path, spec, options);
                return (r.Report.LinesRead, r.Machine.VmStat.Faults, $"max buffered ops {r.Report.Run.MaxBufferedOps:N0}", r);
            });
            if (orleans)
            {
                double orleansRate = Measure("orleans replay", () =>
                {
                    using var host = BenchHost.StartAsync().GetAwaiter().GetResult();
                    try
                    {
                        var r = OrleansReplay.Run(host.Services.GetRequiredService<IGrainFactory>(), path, spec, options).GetAwaiter().GetResult();
                        return (r.Report.LinesRead, r.Report.Run.EmulatedFaults, $"largest batch buffered {r.Report.Run.MaxBufferedOps:N0} ops per task, {r.Report.Run.OrderWaits:N0} mmap fences", r);
                    }
                    finally
                    {
                        host.StopAsync().GetAwaiter().GetResult();
                    }
                });
                Console.WriteLine($"orleans / sim replay rate: {orleansRate / simRate:F2}");
            }
            return 0;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Runs one replay while sampling the managed heap (with garbage every 50 ms; live, after a full collection, every
    /// 2 s and at the end); prints lines/s and the peaks; returns lines/s.
    /// </summary>
    /// <param name="label">Printed before each line.</param>
    /// <param name="replay">Runs the replay; returns what to print and the result, kept alive for the final live-heap measurement.</param>
    private static double Measure(string label, Func<(long Lines, long Faults, string Extra, object Result)> replay)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long baseline = GC.GetTotalMemory(true);
        long peak = baseline, peakLive = baseline;
        using var sampler = new Timer(_ => peak = Math.Max(peak, GC.GetTotalMemory(false)), null, 0, 50);
        using var liveSampler = new Timer(_ => peakLive = Math.Max(peakLive, GC.GetTotalMemory(true)), null, 1000, 2000);
        var sw = Stopwatch.StartNew();
        var (lines, faults, extra, result) = replay();
        double s = sw.Elapsed.TotalSeconds;
        peak = Math.Max(peak, GC.GetTotalMemory(false));
        peakLive = Math.Max(peakLive, GC.GetTotalMemory(true));
        GC.KeepAlive(result);
        Console.WriteLine($"{label}: {lines:N0} lines, {faults:N0} emulated faults in {s:F2} s = {lines / s / 1e6:F2} M lines/s");
        Console.WriteLine($"{label}: managed heap baseline {baseline / (1 << 20):N1} MiB, peak with garbage {peak / (1 << 20):N1} MiB (every 50 ms), peak live {peakLive / (1 << 20):N1} MiB (after a full GC, every 2 s and at the end), {extra}");
        return lines / s;
    }
}
