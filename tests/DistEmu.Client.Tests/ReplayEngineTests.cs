using System.Text.Json;
using Xunit.Abstractions;

namespace DistEmu.Client.Tests;

/// <summary>`distemu replay FILE --engine orleans`: the trace fed to CPU grains in batches gives the sim engine's faults and mappings.</summary>
public sealed class ReplayEngineTests(ITestOutputHelper output) : InProcessCliTests
{
    [Fact]
    public void Orleans_replay_of_the_sample_agrees_with_sim_on_pgfault_and_the_reconstructed_vmas()
    {
        var sim = Replay("sim");
        var orleans = Replay("orleans");
        output.WriteLine($"sim:     pgfault {sim.Faults}, vmas {sim.Vmas}, lines {sim.Lines}, emulated {sim.EmulatedNs:N0} ns, engine line '{sim.EngineLine}'");
        output.WriteLine($"orleans: pgfault {orleans.Faults}, vmas {orleans.Vmas}, lines {orleans.Lines}, emulated {orleans.EmulatedNs:N0} ns, engine line '{orleans.EngineLine}'");
        Assert.Contains("engine orleans", orleans.EngineLine);
        Assert.Contains("engine sim", sim.EngineLine);
        Assert.Equal(38766, orleans.Lines);
        Assert.Equal(sim.Lines, orleans.Lines);
        Assert.Equal(sim.Faults, orleans.Faults);
        Assert.Equal(sim.Vmas, orleans.Vmas);
        Assert.True(orleans.Faults > 38_000, $"the sample's cold start faults every page it touches; got {orleans.Faults} faults");
    }

    [Fact]
    public void Orleans_replay_refuses_replicate_with_exit_2_and_no_folder()
    {
        var outDir = Path.Combine(_tmp, "replicate");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--engine", "orleans", "--replicate", "2", "--out", outDir);
        output.WriteLine(stderr);
        Assert.Equal(2, code);
        Assert.Contains("replicate", stderr);
        Assert.False(Directory.Exists(outDir));
    }

    private (long Faults, long Vmas, long Lines, long EmulatedNs, string EngineLine) Replay(string engine)
    {
        var outDir = Path.Combine(_tmp, engine);
        var (code, stdout, stderr) = Cli("replay", SampleTrace.Path(), "--engine", engine, "--as-fast-as-possible", "--out", outDir);
        Assert.True(code == 0, $"replay --engine {engine} exited {code}: {stderr}");
        using var replay = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "replay.json")));
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var r = replay.RootElement;
        Assert.Equal(r.GetProperty("emulated_faults").GetInt64(), stats.RootElement.GetProperty("faults").GetInt64());
        string engineLine = Lines(stdout).FirstOrDefault(l => l.Contains("engine", StringComparison.Ordinal) && !l.StartsWith("replaying", StringComparison.Ordinal)) ?? "";
        return (r.GetProperty("emulated_faults").GetInt64(), r.GetProperty("vmas").GetInt64(), r.GetProperty("lines_read").GetInt64(), r.GetProperty("emulated_ns").GetInt64(), engineLine);
    }
}
