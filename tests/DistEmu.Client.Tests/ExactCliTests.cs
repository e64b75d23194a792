using System.Text.Json;

namespace DistEmu.Client.Tests;

/// <summary>`run --exact`: the sim engine without run-ahead gives the same results, only more slowly.</summary>
public sealed class ExactCliTests : InProcessCliTests
{
    private JsonElement Run(string name, params string[] extra)
    {
        var dir = Path.Combine(_tmp, name);
        string[] args = ["run", "--engine", "sim", "--preset", "small", "--workload", "page-fault1", "--param", "size_mb=2", "--ops", "3000", "--out", dir, .. extra];
        var (code, stdout, stderr) = Cli(args);
        Assert.True(code == 0, stderr);
        // The summary says which way the engine ran and what it cost.
        Assert.Contains(extra.Contains("--exact") ? "engine events / fault (exact)" : "engine events / fault (run-ahead)", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "stats.json")));
        return doc.RootElement.Clone();
    }

    [Fact]
    public void Exact_and_run_ahead_write_the_same_counters_lock_statistics_and_event_log()
    {
        var ahead = Run("ahead");
        var exact = Run("exact", "--exact");

        var aheadEngine = ahead.GetProperty("sim_engine");
        var exactEngine = exact.GetProperty("sim_engine");
        Assert.True(aheadEngine.GetProperty("run_ahead").GetBoolean());
        Assert.False(exactEngine.GetProperty("run_ahead").GetBoolean());
        Assert.True(aheadEngine.GetProperty("events").GetInt64() * 4 < exactEngine.GetProperty("events").GetInt64(),
            "run-ahead should spare most of the engine's resumptions on page-fault1");

        foreach (var key in new[] { "event_log", "vmstat", "locks", "migration_wait_ns", "fault_latency_ns", "writer_wait_ns", "emulated_ns", "faults", "sanitizer" })
            Assert.True(ahead.GetProperty(key).GetRawText() == exact.GetProperty(key).GetRawText(), $"{key} differs:\n{ahead.GetProperty(key)}\n{exact.GetProperty(key)}");
        Assert.Equal(File.ReadAllText(Path.Combine(_tmp, "ahead", "lock_stat")), File.ReadAllText(Path.Combine(_tmp, "exact", "lock_stat")));
        Assert.Equal(File.ReadAllText(Path.Combine(_tmp, "ahead", "vmstat")), File.ReadAllText(Path.Combine(_tmp, "exact", "vmstat")));
    }

    [Fact]
    public void Exact_is_refused_under_the_orleans_engine()
    {
        var (code, _, stderr) = Cli("run", "--engine", "orleans", "--exact", "--out", Path.Combine(_tmp, "x"));
        Assert.Equal(2, code);
        Assert.Contains("--exact", stderr);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "x")));
    }
}
