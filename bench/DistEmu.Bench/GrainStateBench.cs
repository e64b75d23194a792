using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Silo;
using static DistEmu.Bench.OrleansBench;

namespace DistEmu.Bench;

/// <summary>
/// <c>-- grains</c>: what one idle CPU grain costs on the embedded silo, by machine size. For each preset: the machine
/// grain is configured, then <c>--count</c> CPU grains are activated (each answers <see cref="ICpuGrain.Where"/>, so it
/// builds its kernel host and nothing else) and the managed heap after a full GC and the working set are read before
/// and after; the delta over the count is the state of one CPU grain (Orleans' activation included). Before that, on
/// the side, the kernel-side pieces a grain used to build for itself: the machine spec from its JSON and an EmuMachine.
/// </summary>
public static class GrainStateBench
{
    public static int Run(string which, int count, long? ops) => RunAsync(which, count, ops).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string which, int count, long? ops)
    {
        var presets = which == "all" ? new[] { "large-1024", "huge-4096" } : [which];
        Console.WriteLine($"# grains: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}");
        foreach (var p in presets)
        {
            string json = MachineJson.Serialize(Presets.Get(p));
            long spec = PerInstance(200, () => MachineJson.Deserialize(json));
            var shared = MachineJson.Deserialize(json);
            long machine = PerInstance(200, () => new EmuMachine(shared, sanitizer: true, ownsFrames: false));
            Console.WriteLine(Inv($"{p}: machine JSON {json.Length:N0} chars; a deserialized MachineSpec {spec:N0} B; an EmuMachine (sanitizer on, not owning frames) {machine:N0} B"));
        }
        using var host = await BenchHost.StartAsync();
        try
        {
            var grains = host.Grains();
            foreach (var p in presets)
            {
                var spec = Presets.Get(p);
                int n = Math.Min(count, spec.Cpus);
                string run = $"grains-{Guid.NewGuid():N}";
                var machine = grains.GetGrain<IMachineGrain>(run);
                await machine.Configure(LaunchBench.OneOpRun(run, spec));
                // One CPU first, so what every grain of the run shares on this silo is not counted per grain.
                await grains.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, 0, 0)).Where();
                FullGc();
                long heap0 = GC.GetTotalMemory(true), ws0 = Environment.WorkingSet;
                var sw = Stopwatch.StartNew();
                // 64 activations in flight at a time: enough to keep the silo busy, few enough not to time out.
                using var gate = new SemaphoreSlim(64);
                await Task.WhenAll(Enumerable.Range(1, n).Select(async cpu =>
                {
                    await gate.WaitAsync();
                    try { await grains.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, spec.NodeOfCpu(cpu % spec.Cpus), cpu % spec.Cpus)).Where(); }
                    finally { gate.Release(); }
                }));
                double secs = sw.Elapsed.TotalSeconds;
                FullGc();
                long heap = GC.GetTotalMemory(true) - heap0, ws = Environment.WorkingSet - ws0;
                Console.WriteLine(Inv($"{p}: {n:N0} idle CPU grains activated in {secs:F2} s; managed heap +{heap / 1048576.0:F1} MiB = {heap / n:N0} B per CPU grain; working set +{ws / 1048576.0:F1} MiB = {ws / n:N0} B per CPU grain"));
            }
            if (ops is { } perTask)
            {
                // A whole run (page-fault1, one task per CPU), its live heap read (after a full GC) every 3 s of progress.
                foreach (var p in presets)
                {
                    var sample = Stopwatch.StartNew();
                    long maxLive = 0;
                    var result = await OrleansRun.Run(grains, new Kernel.Sim.SimRunOptions { Machine = Presets.Get(p), OpsPerTask = perTask }, status =>
                    {
                        if (sample.Elapsed < TimeSpan.FromSeconds(3)) return;
                        sample.Restart();
                        long live = GC.GetTotalMemory(true);
                        maxLive = Math.Max(maxLive, live);
                        Console.WriteLine(Inv($"#   {p}: {status.Done}/{status.Tasks} done, live heap {live / 1048576.0:F0} MiB, working set {Environment.WorkingSet / 1048576.0:F0} MiB"));
                    });
                    Console.WriteLine(Inv($"{p} --ops {perTask}: {result.Status}, {result.Machine.VmStat.Faults:N0} faults in {result.HostSeconds:F2} s; largest sampled live heap {maxLive / 1048576.0:F0} MiB; process peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB"));
                }
            }
        }
        finally
        {
            await host.StopAsync();
        }
        return 0;
    }

    /// <summary>Heap bytes per object that <paramref name="make"/> returns, over <paramref name="k"/> live ones.</summary>
    private static long PerInstance(int k, Func<object> make)
    {
        var keep = new object[k];
        FullGc();
        long before = GC.GetTotalMemory(true);
        for (int i = 0; i < k; i++) keep[i] = make();
        long after = GC.GetTotalMemory(true);
        GC.KeepAlive(keep);
        return (after - before) / k;
    }
}
