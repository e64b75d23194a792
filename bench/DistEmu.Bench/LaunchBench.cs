using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Silo;
using Microsoft.Extensions.Hosting;
using static DistEmu.Bench.OrleansBench;

namespace DistEmu.Bench;

/// <summary>
/// <c>-- launch</c>: the cost of starting a big machine on the orleans engine. Drives the machine grain the way
/// <see cref="OrleansRun.Run"/> does (Configure, Start, poll Status, Collect), with a 10 ms poll instead of 50 ms, and
/// times each phase: Start() returning means every CPU grain is activated and its task started; Done == Tasks means
/// every task finished. page-fault1 with one op per task (the first mmap; no faults), one task per CPU.
/// A background sampler (every 100 ms) records the largest Environment.WorkingSet and GC.GetTotalMemory(false).
/// </summary>
public static class LaunchBench
{
    private sealed class Sampler : IDisposable
    {
        private readonly Timer _timer;
        private long _maxWs, _maxHeap;
        public Sampler() => _timer = new Timer(_ => Sample(), null, 0, 100);
        public long MaxWorkingSet => Interlocked.Read(ref _maxWs);
        public long MaxHeap => Interlocked.Read(ref _maxHeap);
        public void Sample()
        {
            Max(ref _maxWs, Environment.WorkingSet);
            Max(ref _maxHeap, GC.GetTotalMemory(false));
        }
        private static void Max(ref long field, long v)
        {
            long cur;
            while (v > (cur = Interlocked.Read(ref field)) && Interlocked.CompareExchange(ref field, v, cur) != cur) { }
        }
        public void Dispose() => _timer.Dispose();
    }

    public static int Run(string which, TimeSpan timeout, int largeReps)
    {
        return RunAsync(which, timeout, largeReps).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string which, TimeSpan timeout, int largeReps)
    {
        var presets = which switch
        {
            "all" => new[] { "large-1024", "huge-4096" },
            "large-1024" or "huge-4096" or "small" => [which],
            _ => throw new ArgumentException($"launch: unknown preset '{which}'; expected large-1024, huge-4096, small or all"),
        };
        Console.WriteLine($"# launch: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}, timeout {timeout.TotalSeconds:F0} s per run");
        foreach (var p in presets) Console.WriteLine("# " + Presets.Check(p));
        using var sampler = new Sampler();
        var hostSw = Stopwatch.StartNew();
        using var host = await BenchHost.StartAsync();
        Console.WriteLine(Inv($"# silo started in {hostSw.Elapsed.TotalSeconds:F2} s; working set {Mb(Environment.WorkingSet)}"));
        int rc = 0;
        try
        {
            // Warm-up: the launch path JIT-compiled on the small machine (8 tasks), twice.
            for (int w = 0; w < 2; w++)
                await LaunchOnce(host, Presets.Get("small"), "small (warm-up)", timeout, null);
            foreach (var p in presets)
            {
                int reps = p == "huge-4096" ? 1 : largeReps;
                for (int r = 1; r <= reps; r++)
                {
                    FullGc();
                    if (!await LaunchOnce(host, Presets.Get(p), reps > 1 ? $"{p} #{r}" : p, timeout, sampler)) { rc = 1; break; }
                }
            }
        }
        finally
        {
            await host.StopAsync();
        }
        return rc;
    }

    private static async Task<bool> LaunchOnce(IHost host, MachineSpec spec, string label, TimeSpan timeout, Sampler? sampler)
    {
        var grains = host.Grains();
        int tasks = spec.Cpus;
        long ws0 = Environment.WorkingSet, heap0 = GC.GetTotalMemory(false), calls0 = host.GrainCalls();
        var sw = Stopwatch.StartNew();
        string run = $"launch-{Guid.NewGuid():N}";
        var config = OneOpRun(run, spec);
        var machine = grains.GetGrain<IMachineGrain>(run);
        await machine.Configure(config);
        double tConfigured = sw.Elapsed.TotalSeconds;

        // Start() awaits every CPU grain's Start in turn; run it alongside the poll so a long start shows progress
        // (and so a response timeout of the Start call itself does not end the measurement: the grain carries on).
        var start = machine.Start();
        double? tStarted = null, tFirstDone = null, tAllDone = null;
        string? startError = null;
        var lastReport = Stopwatch.StartNew();
        RunStatus status = new();
        while (sw.Elapsed < timeout)
        {
            await Task.Delay(10);
            if (tStarted == null && start.IsCompleted)
            {
                tStarted = sw.Elapsed.TotalSeconds;
                if (start.IsFaulted) startError = start.Exception?.GetBaseException().Message;
            }
            status = await machine.Status();
            if (tFirstDone == null && status.Done > 0) tFirstDone = sw.Elapsed.TotalSeconds;
            if (status.Done >= status.Tasks && tStarted != null) { tAllDone = sw.Elapsed.TotalSeconds; break; }
            if (lastReport.Elapsed > TimeSpan.FromSeconds(10))
            {
                lastReport.Restart();
                Console.WriteLine(Inv($"#   {label}: {sw.Elapsed.TotalSeconds:F0} s, start {(tStarted == null ? "pending" : "returned")}, {status.Done}/{status.Tasks} done, {host.GrainCalls() - calls0:N0} grain calls so far, working set {Mb(Environment.WorkingSet)}, heap {Mb(GC.GetTotalMemory(false))}"));
            }
        }
        sampler?.Sample();
        if (tAllDone == null)
        {
            Console.WriteLine(Inv($"{label}: STOPPED after {sw.Elapsed.TotalSeconds:F1} s (timeout): start {(tStarted == null ? "not returned" : $"returned at {tStarted:F2} s")}, {status.Done}/{status.Tasks} tasks done, {host.GrainCalls() - calls0:N0} grain calls"));
            PrintMemory(label, sampler, ws0, heap0);
            return false;
        }
        if (status.Error != null) Console.WriteLine($"{label}: a task failed: {status.Error}");
        if (startError != null) Console.WriteLine($"{label}: Start() call failed (the tasks still ran): {startError}");
        var stats = await machine.Collect();
        double tCollected = sw.Elapsed.TotalSeconds;
        long calls = host.GrainCalls() - calls0;
        Console.WriteLine(Inv($"{label}: {tasks} tasks, configure {tConfigured:F3} s, all started (Start returned) {tStarted:F3} s, first task done {tFirstDone:F3} s, all done {tAllDone:F3} s, collected {tCollected:F3} s; ops {stats.Ops:N0}, {calls:N0} grain calls ({(double)calls / tasks:F1} per task)"));
        if (sampler != null) PrintMemory(label, sampler, ws0, heap0);
        return true;
    }

    private static void PrintMemory(string label, Sampler? sampler, long ws0, long heap0)
    {
        long ws = Environment.WorkingSet, heap = GC.GetTotalMemory(false);
        long heapAfterGc = GC.GetTotalMemory(true);
        using var proc = Process.GetCurrentProcess();
        Console.WriteLine(Inv($"{label}: memory: working set before {Mb(ws0)}, after {Mb(ws)}, max sampled {Mb(sampler?.MaxWorkingSet ?? 0)}; process peak working set {Mb(proc.PeakWorkingSet64)} ({proc.PeakWorkingSet64:N0} B); managed heap before {Mb(heap0)}, after {Mb(heap)}, max sampled {Mb(sampler?.MaxHeap ?? 0)}, after full GC (grains still active) {Mb(heapAfterGc)} ({heapAfterGc:N0} B)"));
    }

    private static string Mb(long bytes) => Inv($"{bytes / 1048576.0:F0} MiB");

    /// <summary>page-fault1 with one op per task on every CPU of <paramref name="spec"/>: a run that only launches.</summary>
    internal static RunConfig OneOpRun(string run, MachineSpec spec) => new()
    {
        RunId = run,
        MachineJson = MachineJson.Serialize(spec),
        Sanitizer = true,
        Workload = "page-fault1",
        Params = new Dictionary<string, string>(),
        Seed = 1,
        OpsPerTask = 1,
        Tasks = spec.Cpus,
    };
}
