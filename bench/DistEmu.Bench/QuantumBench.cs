using System.Diagnostics;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;
using Microsoft.Extensions.Hosting;
using static DistEmu.Bench.OrleansBench;

namespace DistEmu.Bench;

/// <summary>
/// <c>-- quantum [reps] [--ops N]</c>: what emulated-time order costs on the orleans engine, and the emulator against
/// the real kernel, in one process on one embedded silo, round by round: the native page_fault1 loop
/// (bench/native/page_fault1.c, built with cc; one thread, then one per host core), then page-fault1 on small (8 tasks,
/// 128 MiB per mapping, sanitizer on as the CLI's default) lax and under a 1 µs quantum. Each round prints every rate
/// and the ratios within the round (quantum ÷ lax, lax ÷ native); the summary gives the medians of those ratios.
/// </summary>
public static class QuantumBench
{
    private const long QuantumNs = 1_000;

    public static int Run(int reps, long? opsOverride) => RunAsync(reps, opsOverride).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(int reps, long? opsOverride)
    {
        Console.WriteLine($"# quantum: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}");
        string native = BuildNative();
        using var host = await BenchHost.StartAsync();
        try
        {
            var small = Presets.Get("small");
            long ops = opsOverride ?? 40_000;
            SimRunOptions Options(long n) => new() { Machine = small, Workload = "page-fault1", OpsPerTask = n, Tasks = Tasks, Seed = 1 };
            // Warm-up: tier-0 code and activation paths, under both modes.
            await Emu(host, Options(20_000), 0);
            await Emu(host, Options(20_000), QuantumNs);
            Console.WriteLine($"# page-fault1 on small, {Tasks} tasks × {ops:N0} ops; native: 128 MiB × 8 rounds per thread; {reps} round(s)");
            Console.WriteLine($"{"round",5} {"what",16} {"faults",10} {"host_s",7} {"faults/s",10} {"calls/fault",11} {"max_skew_ns",11}");
            var quantumOverLax = new List<double>();
            var laxOverNative1 = new List<double>();
            var laxOverNativeAll = new List<double>();
            var callsLax = new List<double>();
            var callsQuantum = new List<double>();
            for (int r = 1; r <= reps; r++)
            {
                var n1 = Native(native, 1);
                var nAll = Native(native, Environment.ProcessorCount);
                Console.WriteLine(Inv($"{r,5} {"native 1 thread",16} {n1.Faults,10} {n1.Seconds,7:F3} {n1.Rate,10:F0}"));
                Console.WriteLine(Inv($"{r,5} {$"native {Environment.ProcessorCount} threads",16} {nAll.Faults,10} {nAll.Seconds,7:F3} {nAll.Rate,10:F0}"));
                FullGc();
                var lax = await Emu(host, Options(ops), 0);
                FullGc();
                var q = await Emu(host, Options(ops), QuantumNs);
                Console.WriteLine(Inv($"{r,5} {"emulator lax",16} {lax.Faults,10} {lax.Seconds,7:F3} {lax.Rate,10:F0} {lax.CallsPerFault,11:F3}"));
                Console.WriteLine(Inv($"{r,5} {"emulator q=1µs",16} {q.Faults,10} {q.Seconds,7:F3} {q.Rate,10:F0} {q.CallsPerFault,11:F3} {q.MaxSkewNs,11}"));
                quantumOverLax.Add(q.Rate / lax.Rate);
                laxOverNative1.Add(lax.Rate / n1.Rate);
                laxOverNativeAll.Add(lax.Rate / nAll.Rate);
                callsLax.Add(lax.CallsPerFault);
                callsQuantum.Add(q.CallsPerFault);
            }
            Console.WriteLine();
            Console.WriteLine(Inv($"median quantum ÷ lax: {Median(quantumOverLax):F3}; grain calls per fault: lax {Median(callsLax):F3}, quantum {Median(callsQuantum):F3}"));
            Console.WriteLine(Inv($"median lax ÷ native: {Median(laxOverNative1):F3} (native 1 thread), {Median(laxOverNativeAll):F3} (native {Environment.ProcessorCount} threads)"));
            return 0;
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private sealed record Sample(long Faults, double Seconds, double CallsPerFault = 0, long MaxSkewNs = 0)
    {
        public double Rate => Faults / Seconds;
    }

    private static async Task<Sample> Emu(IHost host, SimRunOptions o, long quantumNs)
    {
        long before = host.GrainCalls();
        long skew = 0;
        var r = await OrleansRun.Run(host.Grains(), o, quantumNs: quantumNs, maxSkew: s => skew = s);
        if (r.Status != "completed") throw new InvalidOperationException($"emulator run {r.Status}: {r.Reason}");
        long calls = host.GrainCalls() - before;
        return new Sample(r.Machine.VmStat.Faults, r.HostSeconds, (double)calls / r.Machine.VmStat.Faults, skew);
    }

    /// <summary>bench/native/page_fault1.c, compiled into a temporary folder.</summary>
    private static string BuildNative()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "native", "page_fault1.c");
        string exe = Path.Combine(Path.GetTempPath(), $"distemu-page_fault1-{Environment.ProcessId}");
        var cc = Process.Start(new ProcessStartInfo("cc", ["-O2", "-pthread", "-o", exe, source]) { RedirectStandardError = true })
            ?? throw new InvalidOperationException("cc did not start");
        string err = cc.StandardError.ReadToEnd();
        cc.WaitForExit();
        if (cc.ExitCode != 0) throw new InvalidOperationException($"cc {source}: {err}");
        return exe;
    }

    private static Sample Native(string exe, int threads)
    {
        var p = Process.Start(new ProcessStartInfo(exe, ["8", threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true })
            ?? throw new InvalidOperationException($"{exe} did not start");
        string line = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        var f = line.Split(' ');
        if (p.ExitCode != 0 || f.Length < 2) throw new InvalidOperationException($"{exe}: exit {p.ExitCode}, printed '{line}'");
        return new Sample(long.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), double.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}
