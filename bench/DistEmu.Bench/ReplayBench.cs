using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Replay;

namespace DistEmu.Bench;

/// <summary>
/// `-- replay [lines]`: generate a synthetic perf trace of N lines (default 10 M, 4 threads), then (1) parse it
/// alone and (2) replay it on a 2-node × 4-CPU machine as fast as possible, sampling the managed heap (with and without
/// garbage); prints lines/s and the peak managed heap of the replay (the trace is streamed, never loaded whole).
/// </summary>
public static class ReplayBench
{
    public static int Run(long lines)
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

            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            long baseline = GC.GetTotalMemory(true);
            long peak = baseline, peakLive = baseline;
            // Every 50 ms the heap as it stands (garbage included); every 2 s the live heap after a full collection.
            using var sampler = new Timer(_ => peak = Math.Max(peak, GC.GetTotalMemory(false)), null, 0, 50);
            using var liveSampler = new Timer(_ => peakLive = Math.Max(peakLive, GC.GetTotalMemory(true)), null, 1000, 2000);
            var spec = new MachineSpec { Name = "small", Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 4L << 30, Distance = MachineSpec.UniformDistance(2) };
            sw.Restart();
            var r = TraceReplay.RunSim(path, spec, new ReplayOptions { AsFastAsPossible = true, Sanitizer = false });
            double s = sw.Elapsed.TotalSeconds;
            peak = Math.Max(peak, GC.GetTotalMemory(false));
            Console.WriteLine($"replay: {r.Report.LinesRead:N0} lines, {r.Machine.VmStat.Faults:N0} emulated faults in {s:F2} s = {r.Report.LinesRead / s / 1e6:F2} M lines/s");
            peakLive = Math.Max(peakLive, GC.GetTotalMemory(true));
            Console.WriteLine($"replay: managed heap baseline {baseline / (1 << 20):N1} MiB, peak with garbage {peak / (1 << 20):N1} MiB (every 50 ms), peak live {peakLive / (1 << 20):N1} MiB (after a full GC, every 2 s and at the end), max buffered ops {r.Report.MaxBufferedOps:N0}");
            return 0;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
