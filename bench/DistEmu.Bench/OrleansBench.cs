using System.Diagnostics;
using System.Globalization;
using DistEmu.Bench.Ping;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;
using Microsoft.Extensions.Hosting;

namespace DistEmu.Bench;

/// <summary>
/// <c>-- orleans</c>: in one process and one embedded silo, (a) a grain-to-grain ping (8 caller grains, each awaiting
/// its own target grain N times in a row) and (b) the orleans engine on preset small, page-fault1, 8 tasks, sanitizer
/// on and off. Warm-up rounds first (JIT tiering), then the sizes are calibrated so each timed run takes about
/// <see cref="TargetSeconds"/>, then <c>reps</c> rounds of ping / emulator-on / emulator-off, medians reported.
/// </summary>
public static class OrleansBench
{
    public const int Callers = 8;
    public const int Tasks = 8;
    public const double TargetSeconds = 3.5;
    public const string SizeMb = "16";
    private const int MinWarmupRounds = 3;
    private const int MaxWarmupRounds = 8;
    private const int WarmupPingsPerCaller = 50_000;
    private const long WarmupOpsPerTask = 30_000;

    private sealed record EmuSample(long Faults, double Seconds, long Calls)
    {
        public double FaultsPerSecond => Faults / Seconds;
        public double CallsPerFault => (double)Calls / Faults;
    }

    public static int Run(int reps, int? pingsOverride, long? opsOverride)
    {
        return RunAsync(reps, pingsOverride, opsOverride).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(int reps, int? pingsOverride, long? opsOverride)
    {
        Console.WriteLine($"# orleans: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}");
        Console.WriteLine("# " + Presets.Check("small"));
        var hostSw = Stopwatch.StartNew();
        using var host = await BenchHost.StartAsync();
        Console.WriteLine(Inv($"# silo started in {hostSw.Elapsed.TotalSeconds:F2} s"));
        try
        {
            var grains = host.Grains();
            var small = Presets.Get("small");
            SimRunOptions Options(bool sanitizer, long ops) => new()
            {
                Machine = small,
                Workload = "page-fault1",
                Params = new Dictionary<string, string> { ["size_mb"] = SizeMb },
                OpsPerTask = ops,
                Tasks = Tasks,
                Sanitizer = sanitizer,
                Seed = 1,
            };

            // Warm-up: the first runs are several times slower (tier-0 code, OSR, grain activation paths, heap growth).
            // Rounds of ping + emulator on/off until both emulator rates moved less than 10% from the previous round
            // (at least MinWarmupRounds, at most MaxWarmupRounds).
            double pingRate = 0, emuRate = 0, prevOn = 0, prevOff = 0;
            for (int w = 1; w <= MaxWarmupRounds; w++)
            {
                pingRate = await PingOnce(grains, WarmupPingsPerCaller);
                var on = await EmuOnce(host, Options(true, WarmupOpsPerTask));
                var off = await EmuOnce(host, Options(false, WarmupOpsPerTask));
                emuRate = Math.Max(on.FaultsPerSecond, off.FaultsPerSecond);
                Console.WriteLine(Inv($"# warm-up {w}: ping {pingRate:N0} calls/s; emulator {on.FaultsPerSecond:N0} (on) / {off.FaultsPerSecond:N0} (off) faults/host-s over {on.Faults:N0} faults"));
                bool stable = Math.Abs(on.FaultsPerSecond / prevOn - 1) < 0.10 && Math.Abs(off.FaultsPerSecond / prevOff - 1) < 0.10;
                prevOn = on.FaultsPerSecond;
                prevOff = off.FaultsPerSecond;
                if (w >= MinWarmupRounds && stable) break;
            }
            // Calibrate to ~TargetSeconds per timed run from the last warm-up round (the faster of on/off for the emulator, so
            // both run at least ~TargetSeconds when stable) (page-fault1 ops are ~all faults).
            int pings = pingsOverride ?? RoundUp((long)(pingRate * TargetSeconds / Callers), 10_000);
            long ops = opsOverride ?? RoundUp((long)(emuRate * TargetSeconds / Tasks), 10_000);
            Console.WriteLine(Inv($"# timed runs: ping {Callers} callers × {pings:N0} calls; emulator small (2×4), page-fault1 size_mb={SizeMb}, {Tasks} tasks × {ops:N0} ops; {reps} round(s)"));
            Console.WriteLine($"{"round",5} {"what",13} {"count",11} {"host_s",7} {"per_host_s",12} {"calls/fault",11} {"÷ping",7}");

            var pingRuns = new List<double>();
            var emu = new Dictionary<bool, List<EmuSample>> { [true] = new(), [false] = new() };
            // faults/s ÷ the same round's ping calls/s: less exposed to host load drifting between rounds.
            var roundRatios = new Dictionary<bool, List<double>> { [true] = new(), [false] = new() };
            for (int r = 1; r <= reps; r++)
            {
                FullGc();
                var sw = Stopwatch.StartNew();
                double rate = await PingOnce(grains, pings);
                sw.Stop();
                pingRuns.Add(rate);
                Console.WriteLine(Inv($"{r,5} {"ping",13} {(long)Callers * pings,11} {sw.Elapsed.TotalSeconds,7:F3} {rate,12:F0} {"",11}"));
                foreach (bool sanitizer in new[] { true, false })
                {
                    FullGc();
                    var s = await EmuOnce(host, Options(sanitizer, ops));
                    emu[sanitizer].Add(s);
                    roundRatios[sanitizer].Add(s.FaultsPerSecond / rate);
                    Console.WriteLine(Inv($"{r,5} {(sanitizer ? "emu san=on" : "emu san=off"),13} {s.Faults,11} {s.Seconds,7:F3} {s.FaultsPerSecond,12:F0} {s.CallsPerFault,11:F2} {s.FaultsPerSecond / rate,7:F3}"));
                }
            }

            double pingMedian = Median(pingRuns);
            Console.WriteLine();
            Console.WriteLine(Inv($"median ping: {pingMedian:N0} grain calls/s ({1e6 / pingMedian:F2} µs per call, {Callers} callers)"));
            foreach (bool sanitizer in new[] { true, false })
            {
                var runs = emu[sanitizer];
                double fps = Median(runs.Select(s => s.FaultsPerSecond).ToList());
                double cpf = Median(runs.Select(s => s.CallsPerFault).ToList());
                Console.WriteLine(Inv($"median emulator sanitizer={(sanitizer ? "on " : "off")}: {fps:N0} faults/host-s, {cpf:F2} grain calls/fault, {cpf * fps:N0} grain calls/s, faults/s ÷ ping calls/s = {fps / pingMedian:F3} (medians), {Median(roundRatios[sanitizer]):F3} (median of per-round ratios)"));
            }
            return 0;
        }
        finally
        {
            await host.StopAsync();
        }
    }

    /// <summary>All callers at once; returns ping calls per second.</summary>
    private static async Task<double> PingOnce(IGrainFactory grains, int callsPerCaller)
    {
        var sw = Stopwatch.StartNew();
        var runs = Enumerable.Range(0, Callers).Select(i => grains.GetGrain<IPingCallerGrain>(i).Run(callsPerCaller)).ToArray();
        var results = await Task.WhenAll(runs);
        sw.Stop();
        if (results.Any(x => x != callsPerCaller)) throw new InvalidOperationException("ping: a caller returned the wrong count");
        return (double)Callers * callsPerCaller / sw.Elapsed.TotalSeconds;
    }

    private static async Task<EmuSample> EmuOnce(IHost host, SimRunOptions options)
    {
        long before = host.GrainCalls();
        var result = await OrleansRun.Run(host.Grains(), options);
        long calls = host.GrainCalls() - before;
        return new EmuSample(result.Machine.VmStat.Faults, result.HostSeconds, calls);
    }

    internal static void FullGc()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static int RoundUp(long v, int step) => (int)Math.Max(step, (v + step - 1) / step * step);

    internal static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    internal static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
