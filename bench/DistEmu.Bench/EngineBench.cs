using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>
/// The sim engine's own costs, without the kernel: 8 tasks in lockstep, each op a chain of <c>depth</c> nested async
/// frames (the fault path's builder) whose innermost one makes 7 engine yields, as a page-fault1 fault does. Depth 0
/// gives the cost of a resumption; each level of depth adds one frame that is suspended and completed per op. With
/// these two figures and the fault path's cost on one CPU (quick), a multi-CPU fault's host time is accounted for.
/// </summary>
public static class EngineBench
{
    private const int Tasks = 8;
    private const int Ops = 100_000;
    private const int YieldsPerOp = 7;

    public static int Run(int reps)
    {
        int[] depths = [0, 1, 2, 4, 8, 12];
        Console.WriteLine($"# sim engine: {Tasks} tasks in lockstep x {Ops:N0} ops, {YieldsPerOp} yields per op; best of {reps} after a warm-up");
        Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} host cores, .NET {Environment.Version}");
        Console.WriteLine($"{"depth",5} {"ns_per_op",10} {"ns_per_yield",12} {"events_per_op",13}");
        var best = new Dictionary<int, double>();
        foreach (int depth in depths)
        {
            Measure(depth); // warm-up
            double ns = double.MaxValue;
            double events = 0;
            for (int r = 0; r < reps; r++)
            {
                var (n, e) = Measure(depth);
                ns = Math.Min(ns, n);
                events = e;
            }
            best[depth] = ns;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{depth,5} {ns,10:F0} {ns / YieldsPerOp,12:F1} {events,13:F2}"));
        }
        // Least squares over the depths: ns per op = yields × resumption + depth × frame.
        double meanD = depths.Average(), meanT = depths.Average(d => best[d]);
        double slope = depths.Sum(d => (d - meanD) * (best[d] - meanT)) / depths.Sum(d => (d - meanD) * (d - meanD));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"# resumption: {best[0] / YieldsPerOp:F1} ns; suspended frame (boxed, resumed, completed): {slope:F1} ns"));
        return 0;
    }

    private static (double NsPerOp, double EventsPerOp) Measure(int depth)
    {
        var h = new SimHarness(BenchConfigs.Machine(8));
        for (int c = 0; c < Tasks; c++)
            h.Spawn(h.NewTask(c, null), c, async t =>
            {
                for (int i = 0; i < Ops; i++) await Chain(t, depth);
            });
        var sw = Stopwatch.StartNew();
        h.Run();
        sw.Stop();
        return (sw.Elapsed.TotalNanoseconds / (Tasks * (double)Ops), h.Engine.EventsRun / (Tasks * (double)Ops));
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    private static async ValueTask Chain(EmuTask t, int depth)
    {
        if (depth > 0)
        {
            await Chain(t, depth - 1);
            return;
        }
        for (int i = 0; i < YieldsPerOp; i++)
            await t.Delay(10);
    }
}
