using System.Diagnostics;
using System.Text.Json;

namespace DistEmu.Client.Tests;

/// <summary>
/// A busy host is a normal host (DESIGN, principle 8): with every core of this machine kept busy by other processes,
/// the orleans engine still completes a fully traced run and a 1,024-CPU run. Nothing in a run may depend on a
/// wall-clock bound shorter than the run: a grain is lost only when Orleans' membership says its silo died.
/// </summary>
public sealed class BusyHostTests : InProcessCliTests
{
    /// <summary>One busy loop per core, started before and killed after the runs.</summary>
    private sealed class BusyLoops : IDisposable
    {
        private readonly List<Process> _loops = new();

        public BusyLoops()
        {
            for (int i = 0; i < Environment.ProcessorCount; i++)
            {
                var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })
                    ?? throw new InvalidOperationException("could not start a busy loop");
                _loops.Add(p);
            }
        }

        /// <summary>Every loop is still running (the host stayed busy for the whole run).</summary>
        public bool AllRunning => _loops.All(p => !p.HasExited);

        public void Dispose()
        {
            foreach (var p in _loops)
            {
                try { p.Kill(); p.WaitForExit(); } catch (InvalidOperationException) { }
                p.Dispose();
            }
        }
    }

    private JsonElement Stats(string outDir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json"))).RootElement;

    [Fact]
    public void A_fully_traced_run_and_a_1024_cpu_run_complete_while_every_core_is_busy()
    {
        using var busy = new BusyLoops();

        // 100 % tracing: every fault's spans, written to a Jaeger file, on the embedded silo. (At 8,000 ops per task the
        // run maps thousands of VMAs; with a 4 s bound on reading them all at once, it aborted on a busy host.)
        string traced = Path.Combine(_tmp, "traced");
        var (code, _, err) = Cli("run", "--workload", "migrate-munmap", "--ops", "8000", "--trace-file", Path.Combine(_tmp, "trace.json"), "--out", traced);
        Assert.True(code == 0, err);
        var stats = Stats(traced);
        Assert.Equal("completed", stats.GetProperty("status").GetString());
        Assert.False(stats.TryGetProperty("lost_grains", out var lost), $"grains counted lost: {lost}");
        Assert.True(stats.GetProperty("vmstat").GetProperty("pgfault").GetInt64() > 0);
        // Every span the grains recorded reached the file: none dropped, none left out (no budget was set).
        var trace = stats.GetProperty("trace");
        Assert.True(trace.GetProperty("spans").GetInt64() > 0);
        Assert.Equal(0, trace.GetProperty("dropped").GetInt64());
        Assert.Equal(0, trace.GetProperty("left_out_spans").GetInt64());

        // 1,024 emulated CPUs: every CPU's counters are collected, none counted lost for answering slowly.
        string large = Path.Combine(_tmp, "large");
        (code, _, err) = Cli("run", "--preset", "large-1024", "--workload", "page-fault1", "--ops", "50", "--out", large);
        Assert.True(code == 0, err);
        stats = Stats(large);
        Assert.Equal("completed", stats.GetProperty("status").GetString());
        Assert.False(stats.TryGetProperty("lost_grains", out var lostLarge), $"grains counted lost: {lostLarge}");
        // page-fault1's first op maps 128 MiB, every later one writes a new page: each of the 1,024 tasks faults 49 times.
        Assert.Equal(1024 * 49, stats.GetProperty("vmstat").GetProperty("pgfault").GetInt64());
        Assert.True(busy.AllRunning, "the busy loops ended before the runs did: the host was not busy throughout");
    }
}
